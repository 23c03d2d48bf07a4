package shell

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// MAX_NAME is the longest command name.
const MAX_NAME = 32

// Command is a shell command.
type Command struct {
	// Name is what the user types: a letter, then letters, digits, '-',
	// '_' or '.', at most MAX_NAME bytes.
	Name string
	// Args is the usage synopsis of the arguments, e.g. "[N]"; empty for
	// a command without arguments.
	Args string
	// Help says what the command does. Its first line is the summary
	// that `help` lists; `help NAME` prints all of it.
	Help string
	// Run runs the command with the arguments after its name. It writes
	// to ctx.Out. It returns a usage error (see Usagef) for wrong
	// arguments, ErrExit to end the shell, or another error to report.
	Run func(ctx *Context, args []string) error
}

// Summary returns the first line of the command's help.
func (c Command) Summary() string {
	s, _, _ := strings.Cut(c.Help, "\n")
	return s
}

// Usage returns the usage line without "usage: ": the name and, if there
// are any, the arguments.
func (c Command) Usage() string {
	if c.Args == "" {
		return c.Name
	}

	return c.Name + " " + c.Args
}

// Registry is a set of commands, looked up by name. It starts with `help`.
// Its methods are safe for concurrent use.
type Registry struct {
	mu   sync.RWMutex
	cmds map[string]Command
}

// NewRegistry returns a registry holding only the built-in `help`.
func NewRegistry() *Registry {
	r := &Registry{cmds: make(map[string]Command)}
	r.MustRegister(r.helpCommand())

	return r
}

// Register adds c. It returns an error, and adds nothing, if the name is
// taken or not valid, the help is empty or Run is nil.
func (r *Registry) Register(c Command) error {
	if err := validName(c.Name); err != nil {
		return err
	}

	if strings.TrimSpace(c.Help) == "" {
		return fmt.Errorf("shell: command %q has no help text: say in Help what it does", c.Name)
	}

	if c.Run == nil {
		return fmt.Errorf("shell: command %q has no Run function", c.Name)
	}

	r.mu.Lock()
	defer r.mu.Unlock()

	if _, dup := r.cmds[c.Name]; dup {
		return fmt.Errorf("shell: command %q is registered twice: rename one of them", c.Name)
	}

	r.cmds[c.Name] = c
	return nil
}

// MustRegister registers each command and panics if Register returns an
// error: a duplicate or malformed command is a programming error, found the
// first time the kernel starts.
func (r *Registry) MustRegister(cmds ...Command) {
	for _, c := range cmds {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Lookup returns the command with the name.
func (r *Registry) Lookup(name string) (Command, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()

	c, ok := r.cmds[name]
	return c, ok
}

// Commands returns the commands sorted by name.
func (r *Registry) Commands() []Command {
	r.mu.RLock()
	defer r.mu.RUnlock()

	cmds := make([]Command, 0, len(r.cmds))
	for _, c := range r.cmds {
		cmds = append(cmds, c)
	}

	slices.SortFunc(cmds, func(a, b Command) int { return strings.Compare(a.Name, b.Name) })
	return cmds
}

// Names returns the sorted names of the commands that start with prefix:
// the completions for Editor.Complete.
func (r *Registry) Names(prefix string) []string {
	var names []string
	for _, c := range r.Commands() {
		if strings.HasPrefix(c.Name, prefix) {
			names = append(names, c.Name)
		}
	}

	return names
}

// validName returns an error if name is not a valid command name.
func validName(name string) error {
	if name == "" || len(name) > MAX_NAME {
		return fmt.Errorf("shell: command name %q: want 1 to %d characters", name, MAX_NAME)
	}

	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '-' || c == '_' || c == '.')) {
			return fmt.Errorf("shell: command name %q: want a letter, then letters, digits, '-', '_' or '.'", name)
		}
	}

	return nil
}

// helpCommand returns the built-in `help`, which lists r's commands.
func (r *Registry) helpCommand() Command {
	return Command{
		Name: "help",
		Args: "[COMMAND]",
		Help: "list the commands, or describe one\n" +
			"Without an argument, help lists every command with its arguments and\n" +
			"what it does. With a command name, it prints that command's usage and\n" +
			"full description.",
		Run: func(ctx *Context, args []string) error {
			switch len(args) {
			case 0:
				r.list(ctx)
				return nil
			case 1:
				c, ok := r.Lookup(args[0])
				if !ok {
					return fmt.Errorf("no command %q (help lists them)", args[0])
				}

				ctx.Printf("usage: %s\n%s\n", c.Usage(), strings.TrimRight(c.Help, "\n"))
				return nil
			}

			return Usagef("too many arguments")
		},
	}
}

// list prints the commands, their arguments and summaries, aligned.
func (r *Registry) list(ctx *Context) {
	cmds := r.Commands()
	rows := make([][]string, len(cmds))
	for i, c := range cmds {
		rows[i] = []string{c.Usage(), c.Summary()}
	}

	ctx.Printf("commands:\n")
	writeTable(ctx.Out, "  ", nil, nil, rows)
}
