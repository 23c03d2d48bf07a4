package acpitables

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// iaslComplaints are what iasl writes when it finds something wrong in a
// table: "Firmware Warning (ACPI): Incorrect checksum ...", "Invalid ...",
// "**** Unknown ...", compiler errors and warnings.
var iaslComplaints = []string{"Warning", "Error", "Incorrect", "Invalid", "Unknown", "Remark"}

// runIASL runs iasl with args in dir and fails the test when it exits
// non-zero or complains.
func runIASL(t *testing.T, dir string, args ...string) string {
	t.Helper()

	cmd := exec.Command("iasl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()

	if err != nil {
		t.Fatalf("iasl %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	return string(out)
}

func complaints(text string) []string {
	var found []string

	for _, line := range strings.Split(text, "\n") {
		// The compiler's summary line names the words with counts.
		if strings.Contains(line, "0 Errors, 0 Warnings, 0 Remarks") {
			continue
		}

		for _, c := range iaslComplaints {
			if strings.Contains(line, c) {
				found = append(found, strings.TrimSpace(line))
				break
			}
		}
	}

	return found
}

// TestIASL disassembles every table but the RSDP with ACPICA's iasl (Debian package
// acpica-tools), checks it reports nothing wrong, recompiles the DSDT and
// checks the AML iasl makes from its own disassembly is byte for byte the
// AML built here. It is skipped when iasl is not installed.
func TestIASL(t *testing.T) {
	if _, err := exec.LookPath("iasl"); err != nil {
		t.Skip("iasl not found (apt-get install acpica-tools); skipping the ACPICA cross-check")
	}

	for _, cpus := range []int{1, 16, MAX_CPUS} {
		t.Run(fmt.Sprintf("%d vCPUs", cpus), func(t *testing.T) {
			c := DefaultConfig(cpus, testPM)

			im, err := Build(c)
			if err != nil {
				t.Fatal(err)
			}

			dir := t.TempDir()

			for _, tb := range im.Tables {
				// iasl -d takes no binary RSDP (it has no table
				// header); kernel/acpi and checkImage check it.
				if tb.Signature == RSDP_SIGNATURE {
					continue
				}

				name := strings.ToLower(tb.Signature)

				if err := os.WriteFile(filepath.Join(dir, name+".dat"), im.Bytes[tb.Offset:tb.Offset+tb.Length], 0o644); err != nil {
					t.Fatal(err)
				}

				out := runIASL(t, dir, "-d", name+".dat")

				dsl, err := os.ReadFile(filepath.Join(dir, name+".dsl"))
				if err != nil {
					t.Fatalf("iasl -d %s.dat wrote no %s.dsl: %v\n%s", name, name, err, out)
				}

				if bad := complaints(out + string(dsl)); len(bad) > 0 {
					t.Errorf("iasl -d %s.dat complains:\n%s", name, strings.Join(bad, "\n"))
				}
			}

			// Recompile the DSDT's disassembly.
			out := runIASL(t, dir, "-p", "recompiled", "dsdt.dsl")
			if bad := complaints(out); len(bad) > 0 || !strings.Contains(out, "0 Errors, 0 Warnings") {
				t.Errorf("iasl dsdt.dsl complains:\n%s\n%s", strings.Join(bad, "\n"), out)
			}

			aml, err := os.ReadFile(filepath.Join(dir, "recompiled.aml"))
			if err != nil {
				t.Fatal(err)
			}

			ours := im.TableBytes(SIG_DSDT)
			if !bytes.Equal(aml[SDT_HEADER_LENGTH:], ours[SDT_HEADER_LENGTH:]) {
				t.Errorf("iasl compiles the disassembled DSDT to different AML:\niasl: % x\nours: % x", aml[SDT_HEADER_LENGTH:], ours[SDT_HEADER_LENGTH:])
			}
		})
	}
}
