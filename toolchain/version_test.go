package toolchain

import (
	"os"
	"strings"
	"testing"
)

func TestPinnedGoVersion(t *testing.T) {
	data, err := os.ReadFile("GOVERSION")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(data))
	if got := PinnedGoVersion(); got != want {
		t.Errorf("PinnedGoVersion() = %q, GOVERSION holds %q", got, want)
	}
	v, err := ParseGoVersion(PinnedGoVersion())
	if err != nil {
		t.Fatalf("GOVERSION does not hold a release: %v", err)
	}
	if v.Pre != "" {
		t.Errorf("GOVERSION pins a pre-release %s: pin a release", v)
	}
	if v.String() != want {
		t.Errorf("GOVERSION %q is not in canonical form %q", want, v)
	}
}

func TestParseGoVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    GoVersion
		wantErr string // substring of the error; "" for success
	}{
		{in: "go1.26.8", want: GoVersion{1, 26, 8, ""}},
		{in: "go1.26.0", want: GoVersion{1, 26, 0, ""}},
		{in: "go1.26", want: GoVersion{1, 26, 0, ""}},
		{in: "go1.27rc1", want: GoVersion{1, 27, 0, "rc1"}},
		{in: "go1.27beta2", want: GoVersion{1, 27, 0, "beta2"}},
		{in: "go1.26.8 X:nocoverageredesign", want: GoVersion{1, 26, 8, ""}},
		{in: "go1.26.8-keel.0123456789abcdef", want: GoVersion{1, 26, 8, ""}},
		{in: "go2.0.1", want: GoVersion{2, 0, 1, ""}},
		{in: "devel go1.27-abcdef Mon Jan 1", wantErr: "development build"},
		{in: "1.26.8", wantErr: `does not start with "go"`},
		{in: "", wantErr: `does not start with "go"`},
		{in: "go", wantErr: "malformed"},
		{in: "go1", wantErr: "malformed"},
		{in: "go1.26.8.1", wantErr: "malformed"},
		{in: "go1.x.8", wantErr: "unknown suffix"},
		{in: "go1.26.08", wantErr: "bad number"},
		{in: "go1..8", wantErr: "bad number"},
		{in: "go1.27rc", wantErr: "unknown suffix"},
		{in: "go1.27rc01", wantErr: "unknown suffix"},
		{in: "go1.27.1rc1", wantErr: "malformed"},
		{in: "go1.27alpha1", wantErr: "unknown suffix"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseGoVersion(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseGoVersion(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseGoVersion(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseGoVersion(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestGoVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"go1.26.8", "go1.26.8", 0},
		{"go1.26", "go1.26.0", 0},
		{"go1.26.7", "go1.26.8", -1},
		{"go1.26.10", "go1.26.9", +1},
		{"go1.25.12", "go1.26.0", -1},
		{"go1.27.0", "go1.26.8", +1},
		{"go2.0.0", "go1.99.99", +1},
		{"go1.27rc1", "go1.27.0", -1},
		{"go1.27rc1", "go1.26.8", +1},
		{"go1.27beta1", "go1.27rc1", -1},
		{"go1.27rc2", "go1.27rc1", +1},
		{"go1.27beta2", "go1.27beta10", -1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			a, err := ParseGoVersion(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ParseGoVersion(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Compare(b); got != tt.want {
				t.Errorf("%s.Compare(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := b.Compare(a); got != -tt.want {
				t.Errorf("%s.Compare(%s) = %d, want %d (antisymmetry)", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

func TestMatchesPinned(t *testing.T) {
	tests := []struct {
		have, want string
		match      bool
		wantErr    bool
	}{
		{"go1.26.8", "go1.26.8", true, false},
		{"go1.26.8-keel.abc", "go1.26.8", true, false},
		{"go1.26.7", "go1.26.8", false, false},
		{"go1.26.9", "go1.26.8", false, false}, // newer is not good enough either
		{"go1.27.0", "go1.26.8", false, false},
		{"go1.26rc1", "go1.26.8", false, false},
		{"devel go1.27-abc", "go1.26.8", false, true},
		{"go1.26.8", "bogus", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.have+"_vs_"+tt.want, func(t *testing.T) {
			match, err := MatchesPinned(tt.have, tt.want)
			if (err != nil) != tt.wantErr {
				t.Fatalf("MatchesPinned(%q, %q) error = %v, want error %v", tt.have, tt.want, err, tt.wantErr)
			}
			if match != tt.match {
				t.Errorf("MatchesPinned(%q, %q) = %v, want %v", tt.have, tt.want, match, tt.match)
			}
		})
	}
}

func TestFirstLine(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"go1.26.8\ntime 2026-08-28T16:20:06Z\n", "go1.26.8", false},
		{"go1.26.8", "go1.26.8", false},
		{"  go1.26.8 \r\n", "go1.26.8", false},
		{"", "", true},
		{"\ngo1.26.8\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := firstLine(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("firstLine(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
