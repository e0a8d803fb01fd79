//go:build !linux

package testenv

import "os/exec"

// setParentDeathSignal does nothing here: a server outlives a test binary
// that dies before its cleanup runs.
func setParentDeathSignal(*exec.Cmd) {}
