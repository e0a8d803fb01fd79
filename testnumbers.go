package otp

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// TestNumber is a number whose code is fixed and never sent: Start reaches
// no provider, and Check accepts Code. Everything else is as for any
// number: TTL, attempts, resend cooldown, per-number and per-client limits,
// and events, whose Provider is "otp-test-number". The Guard's number-type
// and region rules do not apply, so fictional numbers work.
type TestNumber struct {
	// Number is the test number, international ("+15555550100") or as
	// Config.DefaultRegion reads it.
	Number string
	// Code verifies the number; Config.CodeLength digits.
	Code string
	// Expires, if set, is when the rule ends and the number becomes an
	// ordinary one again, so that a forgotten reviewer account does not
	// stay open. A verification started before Expires fails its Check
	// with ErrExpired after it.
	Expires time.Time
}

// testNumberProvider is the Ref.Provider of test-number verifications.
const testNumberProvider = "otp-test-number"

// testNumbers are the Config.TestNumbers by E.164. The Verifier sends to a
// live one nothing and checks its code here.
type testNumbers struct {
	numbers map[string]TestNumber
	clock   Clock
}

func newTestNumbers(cfg Config) (*testNumbers, error) {
	t := &testNumbers{numbers: make(map[string]TestNumber, len(cfg.TestNumbers)), clock: cfg.Clock}
	for i, n := range cfg.TestNumbers {
		num, err := phonenumbers.Parse(n.Number, cfg.DefaultRegion)
		if err != nil {
			return nil, errorf("TestNumbers[%d]: %w: cannot parse", i, ErrInvalidPhone)
		}
		if len(n.Code) != cfg.CodeLength || strings.Trim(n.Code, "0123456789") != "" {
			return nil, errorf("TestNumbers[%d]: %w: want %d digits", i, ErrInvalidCode, cfg.CodeLength)
		}
		t.numbers[phonenumbers.Format(num, phonenumbers.E164)] = n
	}
	return t, nil
}

// announce logs that test numbers are on: they are a back door.
func (t *testNumbers) announce(log *slog.Logger) {
	masked := make([]string, 0, len(t.numbers))
	for to := range t.numbers {
		masked = append(masked, MaskPhone(to))
	}
	log.Warn("otp: test numbers are on: their codes are fixed and never sent", slog.Any("numbers", masked))
}

// live reports whether to is a test number whose rule has not expired. A
// nil t has none.
func (t *testNumbers) live(to string) bool {
	if t == nil {
		return false
	}
	n, ok := t.numbers[to]
	return ok && (n.Expires.IsZero() || t.clock.Now().Before(n.Expires))
}

// ref makes the reference of a verification to the test number to.
func (t *testNumbers) ref(to string) Ref {
	return Ref{Provider: testNumberProvider, ID: rand.Text() + "/" + to}
}

func isTestRef(ref Ref) bool { return ref.Provider == testNumberProvider }

// check compares code with the test number's, in constant time, while the
// number's rule lasts: a verification started before Expires does not
// accept the fixed code after it.
func (t *testNumbers) check(ref Ref, code string) error {
	_, to, _ := strings.Cut(ref.ID, "/")
	var n TestNumber
	ok := false
	if t != nil {
		n, ok = t.numbers[to]
	}
	switch {
	case !ok:
		return fmt.Errorf("%w: no longer a test number", ErrNotFound)
	case !t.live(to):
		return fmt.Errorf("%w: the test number's rule has expired", ErrExpired)
	case subtle.ConstantTimeCompare([]byte(code), []byte(n.Code)) != 1:
		return ErrWrongCode
	}
	return nil
}
