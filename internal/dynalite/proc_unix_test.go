//go:build unix

package dynalite

import (
	"errors"
	"syscall"
	"testing"
)

func TestClose_NoOrphans(t *testing.T) {
	t.Parallel()
	s := Start(t)
	pgid := s.cmd.Process.Pid
	if err := syscall.Kill(-pgid, 0); err != nil {
		t.Fatalf("process group %d before Close: %v, want it running", pgid, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d after Close: %v, want ESRCH (no process left)", pgid, err)
	}
}
