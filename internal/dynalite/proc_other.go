//go:build !unix

package dynalite

import (
	"os"
	"os/exec"
)

var (
	sigTerm = os.Kill // no SIGTERM here; server.js also exits when its stdin closes
	sigKill = os.Kill
)

func setProcessGroup(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, sig os.Signal) {
	_ = cmd.Process.Signal(sig)
}
