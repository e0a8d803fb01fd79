package otp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/otpkit/otp"
)

var sentinels = map[string]error{
	"invalid_key": otp.ErrInvalidKey, "invalid_phone": otp.ErrInvalidPhone, "region": otp.ErrRegionNotAllowed,
	"channel": otp.ErrUnsupportedChannel, "invalid_code": otp.ErrInvalidCode, "wrong_code": otp.ErrWrongCode,
	"expired": otp.ErrExpired, "not_found": otp.ErrNotFound, "too_many": otp.ErrTooManyAttempts,
	"rate_limited": otp.ErrRateLimited, "too_soon": otp.ErrResendTooSoon, "rejected": otp.ErrProviderRejected,
	"unavailable": otp.ErrProviderUnavailable, "store": otp.ErrStoreUnavailable,
}

func TestSentinelsAreDistinctAndWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for name, err := range sentinels {
		msg := err.Error()
		assert.True(t, strings.HasPrefix(msg, "otp: "), name)
		assert.Equal(t, strings.ToLower(msg), msg, name)
		assert.False(t, strings.HasSuffix(msg, "."), name)
		assert.False(t, seen[msg], "duplicate message %q", msg)
		seen[msg] = true
		for other, e := range sentinels {
			if other != name {
				assert.NotErrorIs(t, err, e, "%s matches %s", name, other)
			}
		}
	}
}

func TestErrorClass(t *testing.T) {
	cases := map[error]string{
		nil:                                    "",
		fmt.Errorf("x: %w", otp.ErrInvalidKey): "invalid_input",
		otp.ErrInvalidPhone:                    "invalid_input",
		otp.ErrRegionNotAllowed:                "refused_destination",
		&otp.NumberTypeError{Type: otp.NumberPremiumRate}: "refused_destination",
		otp.ErrUnsupportedChannel:                         "invalid_input",
		otp.ErrInvalidCode:                                "invalid_input",
		&otp.WrongCodeError{AttemptsLeft: 2}:              "wrong_code",
		otp.ErrExpired:                                    "expired",
		otp.ErrNotFound:                                   "not_found",
		otp.ErrTooManyAttempts:                            "too_many_attempts",
		&otp.RateLimitError{Scope: otp.ScopeTotal}:        "rate_limited",
		&otp.RateLimitError{Scope: otp.ScopeCooldown}:     "resend_too_soon",
		&otp.ProviderError{Kind: otp.ProviderUnavailable}: "provider_unavailable",
		&otp.ProviderError{}:                              "provider_rejected",
		&otp.ProviderError{Kind: otp.ProviderAccount}:     "provider_account",
		otp.ErrStoreUnavailable:                           "store_unavailable",
		context.DeadlineExceeded:                          "canceled",
		errors.New("boom"):                                "other",
	}
	for err, want := range cases {
		assert.Equal(t, want, otp.ErrorClass(err), "%v", err)
	}
}

func TestRateLimitError(t *testing.T) {
	err := error(&otp.RateLimitError{Scope: otp.ScopeNumber, RetryAfter: 90 * time.Second})
	assert.ErrorIs(t, err, otp.ErrRateLimited)
	assert.NotErrorIs(t, err, otp.ErrResendTooSoon)
	assert.Equal(t, "otp: rate limited (number), retry after 1m30s", err.Error())
	wrapped := fmt.Errorf("handler: %w", err)
	d, ok := otp.RetryAfter(wrapped)
	assert.True(t, ok)
	assert.Equal(t, 90*time.Second, d)

	soon := error(&otp.RateLimitError{Scope: otp.ScopeCooldown, RetryAfter: time.Second})
	assert.ErrorIs(t, soon, otp.ErrResendTooSoon)
	assert.NotErrorIs(t, soon, otp.ErrRateLimited)
	assert.Equal(t, "otp: resend too soon, retry after 1s", soon.Error())

	_, ok = otp.RetryAfter(otp.ErrNotFound)
	assert.False(t, ok)

	// A vendor's own Retry-After comes through too, and only when it sent one.
	throttled := fmt.Errorf("handler: %w", &otp.ProviderError{Provider: "vonage", HTTPStatus: 429, Kind: otp.ProviderUnavailable, RetryAfter: 3 * time.Second})
	d, ok = otp.RetryAfter(throttled)
	assert.True(t, ok)
	assert.Equal(t, 3*time.Second, d)
	_, ok = otp.RetryAfter(&otp.ProviderError{Provider: "vonage", HTTPStatus: 500, Kind: otp.ProviderUnavailable})
	assert.False(t, ok)
}

func TestProviderError(t *testing.T) {
	rejected := &otp.ProviderError{Provider: "vonage", Op: "send", VendorStatus: "3", HTTPStatus: 200, Err: otp.ErrInvalidPhone}
	assert.ErrorIs(t, rejected, otp.ErrProviderRejected)
	assert.ErrorIs(t, rejected, otp.ErrInvalidPhone, "the vendor's judgement is matchable too")
	assert.NotErrorIs(t, rejected, otp.ErrProviderUnavailable)
	assert.Equal(t, `otp: provider vonage send rejected (http 200, status "3"): otp: invalid phone number`, rejected.Error())

	down := fmt.Errorf("wrapped: %w", &otp.ProviderError{Provider: "infobip", Op: "check", Kind: otp.ProviderUnavailable, HTTPStatus: 503})
	assert.ErrorIs(t, down, otp.ErrProviderUnavailable)
	assert.NotErrorIs(t, down, otp.ErrProviderRejected)
	var pe *otp.ProviderError
	assert.ErrorAs(t, down, &pe)
	assert.Equal(t, 503, pe.HTTPStatus)
	assert.Equal(t, "otp: provider infobip check unavailable (http 503)", pe.Error())
}

func TestWrongCodeError(t *testing.T) {
	err := fmt.Errorf("x: %w", &otp.WrongCodeError{AttemptsLeft: 3})
	assert.ErrorIs(t, err, otp.ErrWrongCode)
	var wc *otp.WrongCodeError
	assert.ErrorAs(t, err, &wc)
	assert.Equal(t, 3, wc.AttemptsLeft)
	assert.Equal(t, "otp: wrong code, 3 attempts left", wc.Error())
}

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"+447400123456":    "+44********56",
		"+12015550123":     "+12*******23",
		"jane@example.com": "j***@example.com",
		"jo@example.com":   "j***@example.com",
		"@x":               "@x",
		"+4412":            "*****",
		"":                 "",
	} {
		assert.Equal(t, want, otp.MaskPhone(in), in)
	}
}
