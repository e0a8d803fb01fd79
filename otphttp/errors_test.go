package otphttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otphttp"
)

// TestErrorMapping holds every error the Verifier returns to its status,
// JSON body, headers and message.
func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		class   string
		message string
		body    map[string]any // fields beyond error and message
		retry   string         // Retry-After header
	}{
		{"typo", fmt.Errorf("%w: not a number", otp.ErrInvalidPhone), 400, "invalid_input",
			"That is not a valid phone number. Check it and include the country code, for example +44 7400 123456.", nil, ""},
		{"landline", &otp.NumberTypeError{Type: otp.NumberFixedLine, Channel: otp.SMS}, 422, "refused_destination",
			"That looks like a landline. Enter a mobile number: the code comes by text message.", nil, ""},
		{"premium rate", &otp.NumberTypeError{Type: otp.NumberPremiumRate, Channel: otp.SMS}, 422, "refused_destination",
			"We cannot send codes to premium-rate, toll-free, VoIP or other special numbers. Enter your mobile number.", nil, ""},
		{"voip", &otp.NumberTypeError{Type: otp.NumberVoIP, Channel: otp.SMS}, 422, "refused_destination",
			"We cannot send codes to premium-rate, toll-free, VoIP or other special numbers. Enter your mobile number.", nil, ""},
		{"region", fmt.Errorf("%w: JM", otp.ErrRegionNotAllowed), 422, "refused_destination",
			"We cannot send codes to numbers in that country.", nil, ""},
		{"blocked", &otp.BlockedError{Target: otp.RangeTarget("+44740012xxxx")}, 422, "refused_destination",
			"We cannot send codes to that number right now. Use another number or try again later.", nil, ""},
		{"challenge", &otp.ChallengeError{Scope: otp.ScopeConversion}, 403, "challenge_required",
			"Please confirm you are not a robot, then send the code again.", map[string]any{"challenge": true}, ""},
		{"challenge with a wait", &otp.ChallengeError{Scope: otp.ScopeRange, RetryAfter: 90 * time.Second}, 403, "challenge_required",
			"Please confirm you are not a robot, then send the code again.", map[string]any{"challenge": true, "retry_after": 90.0}, "90"},
		{"code format", otp.ErrInvalidCode, 400, "invalid_input", "Enter the code from the message: digits only.", nil, ""},
		{"key", otp.ErrInvalidKey, 400, "invalid_input", "That request is not valid.", nil, ""},
		{"channel", otp.ErrUnsupportedChannel, 400, "invalid_input", "That request is not valid.", nil, ""},
		{"wrong code", &otp.WrongCodeError{AttemptsLeft: 4}, 422, "wrong_code", "That code is not right. 4 attempts left.",
			map[string]any{"attempts_left": 4.0}, ""},
		{"wrong code, one left", &otp.WrongCodeError{AttemptsLeft: 1}, 422, "wrong_code", "That code is not right. 1 attempt left.",
			map[string]any{"attempts_left": 1.0}, ""},
		{"too many attempts", otp.ErrTooManyAttempts, 410, "too_many_attempts",
			"Too many wrong codes: that code can no longer be used. Send a new one.", nil, ""},
		{"expired", otp.ErrExpired, 410, "expired", "That code has expired. Send a new one.", nil, ""},
		{"not found", otp.ErrNotFound, 404, "not_found", "There is no code waiting to be checked. Enter your number to get one.", nil, ""},
		{"rate limited", &otp.RateLimitError{Scope: otp.ScopeNumber, RetryAfter: 59*time.Minute + 100*time.Millisecond}, 429, "rate_limited",
			"Too many requests. Try again in 60 minutes.", map[string]any{"retry_after": 3541.0}, "3541"},
		{"rate limited, seconds", &otp.RateLimitError{Scope: otp.ScopeClient, RetryAfter: 1500 * time.Millisecond}, 429, "rate_limited",
			"Too many requests. Try again in 2 seconds.", map[string]any{"retry_after": 2.0}, "2"},
		{"rate limited, hours", &otp.RateLimitError{Scope: otp.ScopeTotal, RetryAfter: 3 * time.Hour}, 429, "rate_limited",
			"Too many requests. Try again in 3 hours.", map[string]any{"retry_after": 10800.0}, "10800"},
		{"rate limited, no wait", &otp.RateLimitError{Scope: otp.ScopeCapacity}, 429, "rate_limited",
			"Too many requests. Try again later.", nil, ""},
		{"resend too soon", &otp.RateLimitError{Scope: otp.ScopeCooldown, RetryAfter: time.Second}, 429, "resend_too_soon",
			"A code was sent moments ago. You can ask for another in 1 second.", map[string]any{"retry_after": 1.0}, "1"},
		{"provider down", &otp.ProviderError{Provider: "vonage", Kind: otp.ProviderUnavailable, HTTPStatus: 503, RetryAfter: 7 * time.Second}, 503,
			"provider_unavailable", "The verification service is not answering. Try again in a minute.", map[string]any{"retry_after": 7.0}, "7"},
		{"provider account", &otp.ProviderError{Provider: "vonage", Kind: otp.ProviderAccount, HTTPStatus: 401}, 503,
			"provider_account", "The verification service is not answering. Try again in a minute.", nil, ""},
		{"provider rejected", &otp.ProviderError{Provider: "vonage", Kind: otp.ProviderRejected, HTTPStatus: 400}, 502,
			"provider_rejected", "The verification service refused the request.", nil, ""},
		{"provider judged the number invalid", &otp.ProviderError{Provider: "vonage", Kind: otp.ProviderRejected, Err: otp.ErrInvalidPhone}, 400,
			"invalid_input", "That is not a valid phone number. Check it and include the country code, for example +44 7400 123456.", nil, ""},
		{"store down", fmt.Errorf("%w: dial tcp", otp.ErrStoreUnavailable), 503, "store_unavailable",
			"The verification service is not answering. Try again in a minute.", nil, ""},
		{"canceled", context.Canceled, 503, "canceled", "The verification service is not answering. Try again in a minute.", nil, ""},
		{"deadline", context.DeadlineExceeded, 504, "canceled", "The verification service is not answering. Try again in a minute.", nil, ""},
		{"unauthorized", otphttp.ErrUnauthorized, 401, "unauthorized", "Sign in first.", nil, ""},
		{"anything else", errors.New("boom"), 500, "other", "Something went wrong. Try again.", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			otphttp.WriteError(rec, httptest.NewRequest(http.MethodPost, "/start", nil), nil, c.err)
			assert.Equal(t, c.status, rec.Code)
			assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.Equal(t, c.retry, rec.Header().Get("Retry-After"))
			var body map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			want := map[string]any{"error": c.class, "message": c.message}
			for k, v := range c.body {
				want[k] = v
			}
			assert.Equal(t, want, body)
			assert.NotContains(t, rec.Body.String(), "vonage", "no provider detail reaches the client")

			f := otphttp.Describe(c.err)
			assert.Equal(t, c.status, f.Status)
			assert.Equal(t, c.class, f.Class)
		})
	}
	assert.Equal(t, otphttp.Failure{}, otphttp.Describe(nil))
}

// Every class otp.ErrorClass knows has a message of its own, in every
// built-in language.
func TestEveryMessageInEveryLanguage(t *testing.T) {
	c := otphttp.NewCatalog()
	en := c.Languages()[0]
	ids := []otphttp.MessageID{otphttp.MsgInvalidPhone, otphttp.MsgLandline, otphttp.MsgNumberType, otphttp.MsgRegionNotAllowed,
		otphttp.MsgDestinationBlocked, otphttp.MsgChallengeRequired, otphttp.MsgInvalidCode, otphttp.MsgWrongCode,
		otphttp.MsgWrongCodeOne, otphttp.MsgTooManyAttempts, otphttp.MsgExpired, otphttp.MsgNotFound, otphttp.MsgRateLimited,
		otphttp.MsgResendTooSoon, otphttp.MsgUnavailable, otphttp.MsgProviderRejected, otphttp.MsgInternal, otphttp.MsgBadRequest,
		otphttp.MsgTooLarge, otphttp.MsgUnsupportedMedia, otphttp.MsgMethodNotAllowed, otphttp.MsgUnauthorized,
		otphttp.MsgCodeSent, otphttp.MsgCodeResent, otphttp.MsgWaitSeconds, otphttp.MsgWaitSecondsOne, otphttp.MsgWaitMinutes,
		otphttp.MsgWaitHours, otphttp.MsgWaitLater}
	seen := map[string]otphttp.MessageID{}
	for _, id := range ids {
		text := c.Message(en, id, 2)
		require.NotEmpty(t, text, id)
		assert.NotContains(t, seen, text, "%s and %s say the same", id, seen[text])
		seen[text] = id
	}
	require.Len(t, c.Languages(), 4)
	for _, tag := range c.Languages()[1:] {
		for _, id := range ids {
			assert.NotEqual(t, c.Message(en, id, 2), c.Message(tag, id, 2), "%s has no %s text of its own", id, tag)
		}
	}
}
