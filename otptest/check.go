package otptest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// The conformance suites check with these few helpers, not an assertion
// library, so that a user's test build needs nothing beyond the standard
// library. Each ends the test at the first failure; msgAndArgs is a format
// string and its arguments, or nothing.

func fail(t testing.TB, what string, msgAndArgs []any) {
	t.Helper()
	if len(msgAndArgs) > 0 {
		format, _ := msgAndArgs[0].(string)
		what = fmt.Sprintf(format, msgAndArgs[1:]...) + ": " + what
	}
	t.Fatal(what)
}

func noError(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		fail(t, fmt.Sprintf("unexpected error: %v", err), msgAndArgs)
	}
}

func errorIs(t testing.TB, err, target error, msgAndArgs ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		fail(t, fmt.Sprintf("error %v does not match %v", err, target), msgAndArgs)
	}
}

func notErrorIs(t testing.TB, err, target error, msgAndArgs ...any) {
	t.Helper()
	if errors.Is(err, target) {
		fail(t, fmt.Sprintf("error %v matches %v", err, target), msgAndArgs)
	}
}

func equal(t testing.TB, want, got any, msgAndArgs ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		fail(t, fmt.Sprintf("got %#v, want %#v", got, want), msgAndArgs)
	}
}

func isTrue(t testing.TB, ok bool, msgAndArgs ...any) {
	t.Helper()
	if !ok {
		fail(t, "check failed", msgAndArgs)
	}
}
