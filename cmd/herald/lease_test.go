package main

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

func TestGoneFromThisHost(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" || host == "localhost" {
		t.Skipf("this host's name (%q, %v) is one the takeover never trusts", host, err)
	}
	// A pid that existed and is gone: a child that has been waited for.
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	dead := child.Process.Pid
	for _, tc := range []struct {
		owner string
		gone  bool
	}{
		{fmt.Sprintf("%s/%d/abcd", host, dead), true},
		{fmt.Sprintf("%s/%d/abcd", host, os.Getpid()), false},  // this process
		{fmt.Sprintf("%s/%d/abcd", host, os.Getppid()), false}, // alive
		{fmt.Sprintf("other-%s/%d/abcd", host, dead), false},   // another host
		{fmt.Sprintf("localhost/%d/abcd", dead), false},
		{fmt.Sprintf("%s/x%d/abcd", host, dead), false},
		{fmt.Sprintf("%s/%d", host, dead), false},
		{"", false},
	} {
		if got := goneFromThisHost(tc.owner); got != tc.gone {
			t.Errorf("goneFromThisHost(%q) = %v, want %v", tc.owner, got, tc.gone)
		}
	}
}
