package otp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
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
	// stay open.
	Expires time.Time
}

// testNumberProvider is the Ref.Provider of test-number verifications.
const testNumberProvider = "otp-test-number"

// testNumbers wraps the Verifier's provider: sends to a live test number
// stop here, and so do checks, resends and cancels of their verifications.
type testNumbers struct {
	Provider
	numbers map[string]TestNumber // by E.164
	clock   Clock
}

func newTestNumbers(p Provider, cfg Config) (*testNumbers, error) {
	t := &testNumbers{Provider: p, numbers: make(map[string]TestNumber, len(cfg.TestNumbers)), clock: cfg.Clock}
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

// live reports whether to is a test number whose rule has not expired.
func (t *testNumbers) live(to string) bool {
	n, ok := t.numbers[to]
	return ok && (n.Expires.IsZero() || t.clock.Now().Before(n.Expires))
}

// Send sends nothing to a live test number.
func (t *testNumbers) Send(ctx context.Context, req SendRequest) (Ref, error) {
	if t.live(req.To) {
		return Ref{Provider: testNumberProvider, ID: rand.Text() + "/" + req.To}, nil
	}
	return t.Provider.Send(ctx, req)
}

// Check compares code with the test number's, in constant time.
func (t *testNumbers) Check(ctx context.Context, ref Ref, code string) error {
	if ref.Provider != testNumberProvider {
		return t.Provider.Check(ctx, ref, code)
	}
	_, to, _ := strings.Cut(ref.ID, "/")
	n, ok := t.numbers[to]
	switch {
	case !ok:
		return fmt.Errorf("%w: no longer a test number", ErrNotFound)
	case subtle.ConstantTimeCompare([]byte(code), []byte(n.Code)) != 1:
		return ErrWrongCode
	}
	return nil
}

// Resend does nothing for a test number.
func (t *testNumbers) Resend(ctx context.Context, ref Ref) error {
	if ref.Provider == testNumberProvider {
		return nil
	}
	if r, ok := t.Provider.(Resender); ok {
		return r.Resend(ctx, ref)
	}
	return errors.ErrUnsupported
}

// Cancel does nothing for a test number.
func (t *testNumbers) Cancel(ctx context.Context, ref Ref) error {
	if ref.Provider == testNumberProvider {
		return nil
	}
	if c, ok := t.Provider.(Canceler); ok {
		return c.Cancel(ctx, ref)
	}
	return errors.ErrUnsupported
}
