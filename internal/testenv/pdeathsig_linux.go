package testenv

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill a started server if the test
// binary dies before its cleanup runs (a panic, a timeout, SIGKILL).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
