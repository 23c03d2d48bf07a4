//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCountCPUList(t *testing.T) {
	tests := []struct {
		list    string
		want    int
		wantErr string
	}{
		{"", 0, ""},
		{"0", 1, ""},
		{"0-1", 2, ""},
		{"0-3,8-11", 8, ""},
		{"0,2,4-5", 4, ""},
		{"x", 0, `"x" is not a number`},
		{"0-y", 0, `"y" is not a number`},
		{"3-1", 0, "bad range"},
		{"-1", 0, `"" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			got, err := countCPUList(tt.list)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("countCPUList(%q) = %d, %v; want an error with %q", tt.list, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("countCPUList(%q) = %d, %v; want %d", tt.list, got, err, tt.want)
			}
		})
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		name       string
		cmdline    string
		wantSleep  time.Duration
		wantReboot bool
		wantOut    string // printed on the console
	}{
		{"none", "console=ttyS0 quiet panic=-1\n", 0, false, ""},
		{"sleep", "console=ttyS0 keel.sleep=10s quiet", 10 * time.Second, false, ""},
		{"sleep compound", "keel.sleep=1m30s", 90 * time.Second, false, ""},
		{"reboot", "keel.reboot=1", 0, true, ""},
		{"reboot off", "keel.reboot=1 keel.reboot=0", 0, false, ""},
		{"both", "keel.reboot=1 keel.sleep=500ms\n", 500 * time.Millisecond, true, ""},
		{"last wins", "keel.sleep=1s keel.sleep=2s", 2 * time.Second, false, ""},
		{"bad sleep", "keel.sleep=10", 0, false, `keel-guest: error: keel.sleep="10": not a duration`},
		{"negative sleep", "keel.sleep=-1s", 0, false, "not a duration"},
		{"bad reboot", "keel.reboot=yes", 0, false, `keel-guest: error: keel.reboot="yes": want 1 or 0`},
		{"prefix only", "keel.sleeper=1s keel.rebooted=1", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			console = &out
			sleep, reboot := parseCmdline(tt.cmdline)
			if sleep != tt.wantSleep || reboot != tt.wantReboot {
				t.Errorf("parseCmdline(%q) = %v, %v; want %v, %v", tt.cmdline, sleep, reboot, tt.wantSleep, tt.wantReboot)
			}
			if tt.wantOut == "" && out.Len() != 0 || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("parseCmdline(%q) printed %q, want %q", tt.cmdline, out.String(), tt.wantOut)
			}
		})
	}
}

func TestClockGettime(t *testing.T) {
	a, err := clockGettime(CLOCK_MONOTONIC)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	b, err := clockGettime(CLOCK_MONOTONIC)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(b.Nano() - a.Nano()); d < 10*time.Millisecond {
		t.Errorf("CLOCK_MONOTONIC advanced %v across a 10ms sleep", d)
	}
	rt, err := clockGettime(CLOCK_REALTIME)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(time.Unix(rt.Sec, rt.Nsec)); d < 0 || d > time.Second {
		t.Errorf("CLOCK_REALTIME is %v off time.Now", d)
	}
}
