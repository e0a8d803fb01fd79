package otp_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/memstore"
	"github.com/otpkit/otp/otptest"
)

var ctx = context.Background()

func TestStartThenCheck(t *testing.T) {
	f := newFixture(t, otp.Config{DefaultRegion: "GB"}, otptest.ProviderConfig{Code: randomCodes})
	st, err := f.v.Start(ctx, sessionKey, "07400 123456")
	require.NoError(t, err)
	assert.Equal(t, ukMobile, st.To, "number normalised to E.164 with the default region")
	assert.Equal(t, otp.SMS, st.Channel)
	assert.Equal(t, "otptest", st.Provider)
	assert.Equal(t, 5, st.AttemptsLeft)
	assert.Equal(t, f.clock.Now().Add(5*time.Minute), st.ExpiresAt)
	assert.Equal(t, f.clock.Now().Add(30*time.Second), st.ResendAt)

	sends := f.p.Sends()
	require.Len(t, sends, 1)
	assert.Equal(t, ukMobile, sends[0].To)
	assert.Len(t, sends[0].Code, 6)

	code, ok := f.p.LastCode(ukMobile)
	require.True(t, ok)
	got, err := f.v.Check(ctx, sessionKey, code)
	require.NoError(t, err)
	assert.Equal(t, ukMobile, got.To, "Check says which number was verified")
	assert.Equal(t, []otp.EventKind{otp.EventStarted, otp.EventSent, otp.EventChecked}, f.events.kinds())

	_, err = f.v.Check(ctx, sessionKey, code)
	assert.ErrorIs(t, err, otp.ErrNotFound, "a verification is consumed by its success")
	_, err = f.v.Status(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrNotFound)
}

func TestStartNormalisesEveryWriting(t *testing.T) {
	f := newFixture(t, otp.Config{DefaultRegion: "GB", Limits: otp.Limits{UnverifiedPerRange: otp.NoLimit}}, otptest.ProviderConfig{})
	for i, in := range []string{"+447400123456", "+44 7400 123456", "07400 123456", "(07400) 123-456", "0044 7400 123456"} {
		st, err := f.v.Start(ctx, "k"+string(rune('a'+i)), in, otp.WithClient("c"+string(rune('a'+i))))
		require.NoError(t, err, in)
		assert.Equal(t, ukMobile, st.To, in)
	}
}

func TestStartWithoutDefaultRegionNeedsPlus(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	_, err := f.v.Start(ctx, sessionKey, "07400 123456")
	assert.ErrorIs(t, err, otp.ErrInvalidPhone)
	assert.Zero(t, f.p.Calls(otp.OpStart))
}

// Bad input fails with its own error, before anything is sent, and leaves
// what was pending (and every limit) as it was.
func TestBadInputChangesNothing(t *testing.T) {
	premium := exampleNumber(t, "GB", phonenumbers.PREMIUM_RATE)
	fixedLine := exampleNumber(t, "GB", phonenumbers.FIXED_LINE)
	tollFree := exampleNumber(t, "GB", phonenumbers.TOLL_FREE)
	us := exampleNumber(t, "US", phonenumbers.FIXED_LINE_OR_MOBILE)
	cases := []struct {
		name  string
		key   string
		phone string
		opts  []otp.StartOption
		want  error
	}{
		{"empty key", "", ukMobile2, nil, otp.ErrInvalidKey},
		{"oversized key", strings.Repeat("k", otp.MaxKeyLen+1), ukMobile2, nil, otp.ErrInvalidKey},
		{"empty phone", sessionKey, "", nil, otp.ErrInvalidPhone},
		{"letters", sessionKey, "call me maybe", nil, otp.ErrInvalidPhone},
		{"too short", sessionKey, "+44 7400", nil, otp.ErrInvalidPhone},
		{"no such country", sessionKey, "+999 7400 123456", nil, otp.ErrInvalidPhone},
		{"invalid for its country", sessionKey, "+44 1111 111111", nil, otp.ErrInvalidPhone},
		{"oversized phone", sessionKey, "+44" + strings.Repeat("1", 300), nil, otp.ErrInvalidPhone},
		{"fixed line by sms", sessionKey, fixedLine, nil, otp.ErrNumberTypeNotAllowed},
		{"premium rate by sms", sessionKey, premium, nil, otp.ErrNumberTypeNotAllowed},
		{"toll free by whatsapp", sessionKey, tollFree, []otp.StartOption{otp.WithChannel(otp.WhatsApp)}, otp.ErrNumberTypeNotAllowed},
		{"region not allowed", sessionKey, us, nil, otp.ErrRegionNotAllowed},
		{"unknown channel", sessionKey, ukMobile2, []otp.StartOption{otp.WithChannel("pigeon")}, otp.ErrUnsupportedChannel},
		{"channel the provider lacks", sessionKey, ukMobile2, []otp.StartOption{otp.WithChannel(otp.Voice)}, otp.ErrUnsupportedChannel},
		{"email that is not bare", sessionKey, "Jane <jane@example.com>", []otp.StartOption{otp.WithChannel(otp.Email)}, otp.ErrInvalidPhone},
		{"email without domain", sessionKey, "jane", []otp.StartOption{otp.WithChannel(otp.Email)}, otp.ErrInvalidPhone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, otp.Config{
				Guard:  otp.Guard{AllowedRegions: []string{"GB"}},
				Limits: otp.Limits{PerNumber: otp.Limit{N: 1, Per: time.Hour}, Total: otp.Limit{N: 2, Per: time.Hour}},
			}, otptest.ProviderConfig{Channels: []otp.Channel{otp.SMS, otp.WhatsApp, otp.Email}})
			before := f.start(t)
			f.clock.Advance(time.Minute) // past the cooldown: a valid Start would send

			_, err := f.v.Start(ctx, tc.key, tc.phone, tc.opts...)
			require.ErrorIs(t, err, tc.want)
			class := "invalid_input"
			if errors.Is(tc.want, otp.ErrNumberTypeNotAllowed) || errors.Is(tc.want, otp.ErrRegionNotAllowed) {
				class = "refused_destination" // a guard refusal, told apart from a typo
			}
			assert.Equal(t, class, otp.ErrorClass(err))
			assert.Equal(t, 1, f.p.Calls(otp.OpStart), "nothing sent")
			assert.Zero(t, f.p.Calls(otp.OpCancel), "nothing cancelled")
			st, err := f.v.Status(ctx, sessionKey)
			require.NoError(t, err, "the pending verification survives")
			assert.Equal(t, before, st)
			assert.Equal(t, otp.EventFailed, f.events.last().Kind)
			// No limit was charged: the one Total token left still lets a send through.
			_, err = f.v.Start(ctx, "other", ukMobile2)
			require.NoError(t, err)
		})
	}
}

func TestCheckRejectsMalformedCodeWithoutAskingTheProvider(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.start(t)
	for _, code := range []string{"12345", "1234567", "12345a", " 12345", "12 456", "１２３４５６", "123456\x00", strings.Repeat("1", 10000)} {
		_, err := f.v.Check(ctx, sessionKey, code)
		require.ErrorIs(t, err, otp.ErrInvalidCode, "%q", code)
		assert.NotContains(t, err.Error(), code)
	}
	_, err := f.v.Check(ctx, sessionKey, "")
	require.ErrorIs(t, err, otp.ErrInvalidCode)
	_, err = f.v.Check(ctx, "", fixedCode)
	assert.ErrorIs(t, err, otp.ErrInvalidKey)
	assert.Zero(t, f.p.Calls(otp.OpCheck))
	st, err := f.v.Status(ctx, sessionKey)
	require.NoError(t, err)
	assert.Equal(t, 5, st.AttemptsLeft, "no attempt used")
	_, err = f.v.Check(ctx, sessionKey, fixedCode)
	assert.NoError(t, err)
}

func TestCodeLength(t *testing.T) {
	f := newFixture(t, otp.Config{CodeLength: 4}, otptest.ProviderConfig{Code: randomCodes})
	f.start(t)
	code, _ := f.p.LastCode(ukMobile)
	require.Len(t, code, 4, "the provider was asked for 4 digits")
	_, err := f.v.Check(ctx, sessionKey, code+"0")
	assert.ErrorIs(t, err, otp.ErrInvalidCode)
	_, err = f.v.Check(ctx, sessionKey, code)
	assert.NoError(t, err)
}

func TestWrongCodesThenBurn(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.start(t)
	for left := 4; left >= 1; left-- {
		_, err := f.v.Check(ctx, sessionKey, wrongCode)
		var wc *otp.WrongCodeError
		require.ErrorAs(t, err, &wc)
		assert.ErrorIs(t, err, otp.ErrWrongCode)
		assert.Equal(t, left, wc.AttemptsLeft)
		assert.NotContains(t, err.Error(), wrongCode)
		st, err := f.v.Status(ctx, sessionKey)
		require.NoError(t, err)
		assert.Equal(t, left, st.AttemptsLeft)
	}
	_, err := f.v.Check(ctx, sessionKey, wrongCode)
	require.ErrorIs(t, err, otp.ErrTooManyAttempts)
	assert.Equal(t, 1, f.p.Calls(otp.OpCancel), "burned at the provider too")
	assert.Zero(t, f.p.Pending())
	assert.Contains(t, f.events.kinds(), otp.EventBurned)
	_, err = f.v.Check(ctx, sessionKey, fixedCode)
	assert.ErrorIs(t, err, otp.ErrNotFound, "the right code is useless after the burn")
	assert.Equal(t, 5, f.p.Calls(otp.OpCheck))
}

func TestVendorBurnsFirst(t *testing.T) {
	f := newFixture(t, otp.Config{MaxAttempts: 5}, otptest.ProviderConfig{BurnAfter: 3})
	f.start(t)
	for i := 0; i < 2; i++ {
		_, err := f.v.Check(ctx, sessionKey, wrongCode)
		require.ErrorIs(t, err, otp.ErrWrongCode)
	}
	_, err := f.v.Check(ctx, sessionKey, wrongCode)
	require.ErrorIs(t, err, otp.ErrTooManyAttempts)
	_, err = f.v.Status(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrNotFound, "burned locally as the vendor did")
}

func TestConcurrentRightCodesSucceedOnce(t *testing.T) {
	for _, lenient := range []bool{false, true} {
		name := "consuming vendor"
		if lenient {
			name = "vendor that accepts the code again"
		}
		t.Run(name, func(t *testing.T) {
			// A reusable code reaches the vendor and is accepted on every
			// check: only the Store's atomic consume can stop a second
			// success.
			f := newFixture(t, otp.Config{}, otptest.ProviderConfig{Reusable: lenient})
			maxAttempts := 5
			if lenient {
				maxAttempts = 1000
				f.p.SetDelay(time.Millisecond) // the checks overlap at the vendor
			}
			v := f.verifier(t, f.p, f.store, otp.Config{MaxAttempts: maxAttempts})
			_, err := v.Start(ctx, sessionKey, ukMobile)
			require.NoError(t, err)

			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, other := 0, map[string]int{}
			gate := make(chan struct{})
			for range 100 {
				wg.Go(func() {
					<-gate
					_, err := v.Check(ctx, sessionKey, fixedCode)
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						wins++
						return
					}
					other[otp.ErrorClass(err)]++
				})
			}
			close(gate)
			wg.Wait()
			assert.Equal(t, 1, wins, "exactly one success; others: %v", other)
			for class := range other {
				assert.Contains(t, []string{"not_found", "too_many_attempts"}, class)
			}
			if lenient {
				assert.Greater(t, f.p.Calls(otp.OpCheck), 1, "the race really happened at the vendor")
			} else {
				assert.LessOrEqual(t, f.p.Calls(otp.OpCheck), 5)
			}
		})
	}
}

func TestConcurrentWrongGuessesNeverExceedMaxAttempts(t *testing.T) {
	f := newFixture(t, otp.Config{MaxAttempts: 5}, otptest.ProviderConfig{})
	f.start(t)
	f.p.SetDelay(2 * time.Millisecond) // guesses overlap at the vendor
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			<-gate
			_, err := f.v.Check(ctx, sessionKey, wrongCode)
			errs <- err
		})
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.True(t, errors.Is(err, otp.ErrWrongCode) || errors.Is(err, otp.ErrTooManyAttempts) || errors.Is(err, otp.ErrNotFound), "%v", err)
	}
	assert.Equal(t, 5, f.p.Calls(otp.OpCheck), "exactly MaxAttempts checks reached the provider")
	_, err := f.v.Check(ctx, sessionKey, fixedCode)
	assert.True(t, errors.Is(err, otp.ErrNotFound) || errors.Is(err, otp.ErrTooManyAttempts), "%v", err)
	assert.Equal(t, 5, f.p.Calls(otp.OpCheck))
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, otp.Config{TTL: 2 * time.Minute}, otptest.ProviderConfig{})
	f.start(t)
	f.clock.Advance(2*time.Minute - time.Nanosecond)
	_, err := f.v.Status(ctx, sessionKey)
	require.NoError(t, err)
	f.clock.Advance(time.Nanosecond)
	_, err = f.v.Check(ctx, sessionKey, fixedCode)
	assert.ErrorIs(t, err, otp.ErrExpired)
	_, err = f.v.Status(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrExpired)
	assert.Zero(t, f.p.Calls(otp.OpCheck), "an expired code never reaches the provider")
	// A new Start replaces the expired one.
	f.start(t)
	_, err = f.v.Check(ctx, sessionKey, fixedCode)
	assert.NoError(t, err)
}

func TestVendorExpiryAndForgetting(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.start(t)
	f.p.FailNext(otp.OpCheck, otptest.Fault{Err: otp.ErrExpired})
	_, err := f.v.Check(ctx, sessionKey, fixedCode)
	require.ErrorIs(t, err, otp.ErrExpired)
	_, err = f.v.Status(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrNotFound, "what expired at the vendor is gone here")

	// "Not found" may mean a concurrent check consumed it (see
	// TestLosingCheckDoesNotUndoTheWinner): the record stays, one attempt
	// used, until its TTL.
	f.start(t)
	f.p.FailNext(otp.OpCheck, otptest.Fault{Err: otp.ErrNotFound})
	_, err = f.v.Check(ctx, sessionKey, fixedCode)
	require.ErrorIs(t, err, otp.ErrNotFound)
	st, err := f.v.Status(ctx, sessionKey)
	require.NoError(t, err)
	assert.Equal(t, 4, st.AttemptsLeft)
}

func TestStartInsideCooldownSendsNothing(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{Code: randomCodes})
	first := f.start(t)
	code, _ := f.p.LastCode(ukMobile)
	f.clock.Advance(29 * time.Second)
	again, err := f.v.Start(ctx, sessionKey, "+44 7400 123456")
	require.NoError(t, err)
	assert.Equal(t, first, again, "the pending verification is returned as it was")
	assert.Equal(t, 1, f.p.Calls(otp.OpStart))

	// After the cooldown a Start replaces it, cancelling the old one first.
	f.clock.Advance(time.Second)
	_, err = f.v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)
	assert.Equal(t, 2, f.p.Calls(otp.OpStart))
	assert.Equal(t, 1, f.p.Calls(otp.OpCancel))
	assert.Equal(t, 1, f.p.Pending())
	newCode, _ := f.p.LastCode(ukMobile)
	if newCode != code {
		_, err = f.v.Check(ctx, sessionKey, code)
		assert.ErrorIs(t, err, otp.ErrWrongCode, "the old code is dead")
	}
	_, err = f.v.Check(ctx, sessionKey, newCode)
	assert.NoError(t, err)
}

func TestStartWithAnotherNumberReplaces(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.start(t)
	st, err := f.v.Start(ctx, sessionKey, ukMobile2)
	require.NoError(t, err)
	assert.Equal(t, ukMobile2, st.To)
	assert.Equal(t, 2, f.p.Calls(otp.OpStart))
	assert.Equal(t, 1, f.p.Calls(otp.OpCancel))
	got, err := f.v.Check(ctx, sessionKey, fixedCode)
	require.NoError(t, err)
	assert.Equal(t, ukMobile2, got.To)
}

func TestFailedReplacementKeepsTheOldVerification(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.start(t)
	f.p.FailNext(otp.OpStart, otptest.Fault{})
	_, err := f.v.Start(ctx, sessionKey, ukMobile2)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	assert.Zero(t, f.p.Calls(otp.OpCancel), "the old one is cancelled only once replaced")
	st, err := f.v.Check(ctx, sessionKey, fixedCode)
	require.NoError(t, err, "the old code still works")
	assert.Equal(t, ukMobile, st.To)
}

func TestConcurrentStartsOfOneKeySendOnce(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.p.SetDelay(5 * time.Millisecond) // widen the race
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-gate
			_, err := f.v.Start(ctx, sessionKey, ukMobile)
			assert.NoError(t, err)
		})
	}
	close(gate)
	wg.Wait()
	assert.Equal(t, 1, f.p.Calls(otp.OpStart))
}

func TestResend(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{Code: randomCodes})
	f.start(t)
	code, _ := f.p.LastCode(ukMobile)
	_, err := f.v.Check(ctx, sessionKey, wrongCode)
	require.ErrorIs(t, err, otp.ErrWrongCode)

	f.clock.Advance(10 * time.Second)
	_, err = f.v.Resend(ctx, sessionKey)
	require.ErrorIs(t, err, otp.ErrResendTooSoon)
	assert.NotErrorIs(t, err, otp.ErrRateLimited)
	wait, ok := otp.RetryAfter(err)
	require.True(t, ok)
	assert.Equal(t, 20*time.Second, wait)
	assert.Zero(t, f.p.Calls(otp.OpResend))

	f.clock.Advance(20 * time.Second)
	st, err := f.v.Resend(ctx, sessionKey)
	require.NoError(t, err)
	assert.Equal(t, 1, f.p.Calls(otp.OpResend))
	assert.Equal(t, 1, f.p.Calls(otp.OpStart))
	assert.Equal(t, 4, st.AttemptsLeft, "a resend of the same code keeps the attempts used")
	assert.Equal(t, f.clock.Now(), st.SentAt)
	sends := f.p.Sends()
	require.Len(t, sends, 2)
	assert.True(t, sends[1].Resend)
	assert.Equal(t, code, sends[1].Code)

	_, err = f.v.Resend(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrResendTooSoon, "the cooldown restarts at the resend")
	_, err = f.v.Check(ctx, sessionKey, code)
	assert.NoError(t, err)
	_, err = f.v.Resend(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrNotFound)
}

func TestResendWithoutResenderStartsAnew(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{Code: randomCodes})
	v := f.verifier(t, plainProvider{f.p}, f.store, otp.Config{})
	_, err := v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)
	_, err = v.Check(ctx, sessionKey, wrongCode)
	require.ErrorIs(t, err, otp.ErrWrongCode)
	f.clock.Advance(30 * time.Second)
	st, err := v.Resend(ctx, sessionKey)
	require.NoError(t, err)
	assert.Equal(t, 2, f.p.Calls(otp.OpStart))
	assert.Zero(t, f.p.Calls(otp.OpResend))
	assert.Equal(t, 5, st.AttemptsLeft, "a new code brings new attempts")
	code, _ := f.p.LastCode(ukMobile)
	_, err = v.Check(ctx, sessionKey, code)
	assert.NoError(t, err)
}

func TestCancel(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.start(t)
	require.NoError(t, f.v.Cancel(ctx, sessionKey))
	assert.Equal(t, 1, f.p.Calls(otp.OpCancel))
	assert.Zero(t, f.p.Pending())
	_, err := f.v.Check(ctx, sessionKey, fixedCode)
	assert.ErrorIs(t, err, otp.ErrNotFound)
	assert.ErrorIs(t, f.v.Cancel(ctx, sessionKey), otp.ErrNotFound)
	assert.ErrorIs(t, f.v.Cancel(ctx, ""), otp.ErrInvalidKey)
}

func TestCancelSucceedsWhenTheVendorRefuses(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.start(t)
	f.p.FailNext(otp.OpCancel, otptest.Fault{Err: &otp.ProviderError{Provider: "otptest", Op: "cancel", VendorStatus: "19"}})
	require.NoError(t, f.v.Cancel(ctx, sessionKey))
	_, err := f.v.Check(ctx, sessionKey, fixedCode)
	assert.ErrorIs(t, err, otp.ErrNotFound, "no check can succeed after Cancel")
}

func TestStatus(t *testing.T) {
	f := newFixture(t, otp.Config{MaxAttempts: 3, ResendCooldowns: []time.Duration{time.Minute}, TTL: 10 * time.Minute}, otptest.ProviderConfig{})
	_, err := f.v.Status(ctx, sessionKey)
	require.ErrorIs(t, err, otp.ErrNotFound)
	t0 := f.clock.Now()
	_, err = f.v.Start(ctx, sessionKey, ukMobile, otp.WithChannel(otp.Voice))
	require.NoError(t, err)
	_, _ = f.v.Check(ctx, sessionKey, wrongCode)
	st, err := f.v.Status(ctx, sessionKey)
	require.NoError(t, err)
	assert.Equal(t, otp.Status{
		To: ukMobile, Channel: otp.Voice, Provider: "otptest", AttemptsLeft: 2,
		CreatedAt: t0, SentAt: t0, ResendAt: t0.Add(time.Minute), ExpiresAt: t0.Add(10 * time.Minute),
	}, st)
}

func TestEmailChannel(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	st, err := f.v.Start(ctx, sessionKey, "Jane.Doe@Example.COM", otp.WithChannel(otp.Email))
	require.NoError(t, err)
	assert.Equal(t, "Jane.Doe@example.com", st.To, "the domain is case-insensitive, the local part is not")
	assert.Equal(t, otp.Email, f.p.Sends()[0].Channel)
	_, err = f.v.Check(ctx, sessionKey, fixedCode)
	assert.NoError(t, err)
}

// One mailbox has one per-number limit, however its address is spelled.
func TestEmailPerNumberLimitIsPerMailbox(t *testing.T) {
	f := newFixture(t, otp.Config{Limits: otp.Limits{PerNumber: otp.Limit{N: 2, Per: time.Hour}}}, otptest.ProviderConfig{})
	spellings := []string{"victim@gmail.com", "Victim+1@gmail.com", "v.i.c.t.i.m+x@GoogleMail.com"}
	for i, to := range spellings {
		_, err := f.v.Start(ctx, "k"+strconv.Itoa(i), to, otp.WithChannel(otp.Email))
		if i < 2 {
			require.NoError(t, err, to)
			continue
		}
		var rl *otp.RateLimitError
		require.ErrorAs(t, err, &rl, to)
		assert.Equal(t, otp.ScopeNumber, rl.Scope)
	}
	assert.Equal(t, "Victim+1@gmail.com", f.p.Sends()[1].To, "the code goes to the address as given")

	// Where the domain may route tags to other mailboxes they stay apart.
	for i, to := range []string{"Ops@example.com", "ops@EXAMPLE.com", "OPS@example.com", "ops+billing@example.com"} {
		_, err := f.v.Start(ctx, "e"+strconv.Itoa(i), to, otp.WithChannel(otp.Email))
		if i == 2 {
			require.ErrorIs(t, err, otp.ErrRateLimited, "the same mailbox in another case")
			continue
		}
		require.NoError(t, err, to)
	}
}

func TestVoiceAcceptsFixedLines(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	fixedLine := exampleNumber(t, "GB", phonenumbers.FIXED_LINE)
	st, err := f.v.Start(ctx, sessionKey, fixedLine, otp.WithChannel(otp.Voice))
	require.NoError(t, err)
	assert.Equal(t, fixedLine, st.To)
}

func TestLocalePassesThrough(t *testing.T) {
	var got otp.SendRequest
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	v := f.verifier(t, recordingProvider{Provider: f.p, got: &got}, f.store, otp.Config{CodeLength: 8})
	_, err := v.Start(ctx, sessionKey, ukMobile, otp.WithLocale("cy-gb"), otp.WithChannel(otp.WhatsApp))
	require.NoError(t, err)
	assert.Equal(t, otp.SendRequest{To: ukMobile, Channel: otp.WhatsApp, CodeLength: 8, Locale: "cy-gb", Region: "GB"}, got)
}

// TestClientPassesThrough: the client ID of Start, and of a Resend that
// starts a new verification, reaches the provider's SendRequest.
func TestClientPassesThrough(t *testing.T) {
	var got otp.SendRequest
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	v := f.verifier(t, recordingProvider{Provider: f.p, got: &got}, f.store, otp.Config{})
	_, err := v.Start(ctx, sessionKey, ukMobile, otp.WithClient("203.0.113.7"))
	require.NoError(t, err)
	assert.Equal(t, "203.0.113.7", got.Client)

	plain := plainRecorder{plainProvider{f.p}, &got}
	v = f.verifier(t, plain, f.store, otp.Config{})
	_, err = v.Start(ctx, "other-key", ukMobile)
	require.NoError(t, err)
	assert.Empty(t, got.Client)
	f.clock.Advance(time.Minute)
	_, err = v.Resend(ctx, "other-key", otp.WithClient("acct-42"))
	require.NoError(t, err)
	assert.Equal(t, otp.SendRequest{To: ukMobile, Channel: otp.SMS, CodeLength: 6, Region: "GB", Client: "acct-42"}, got, "a resend by a new send")
}

// plainRecorder is a provider without Resender that records its sends.
type plainRecorder struct {
	plainProvider
	got *otp.SendRequest
}

func (r plainRecorder) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	*r.got = req
	return r.plainProvider.Send(ctx, req)
}

type recordingProvider struct {
	*otptest.Provider
	got *otp.SendRequest
}

func (r recordingProvider) Send(ctx context.Context, req otp.SendRequest) (otp.Ref, error) {
	*r.got = req
	return r.Provider.Send(ctx, req)
}

func TestProviderFailureOnSendStoresNothing(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.p.FailNext(otp.OpStart, otptest.Fault{})
	_, err := f.v.Start(ctx, sessionKey, ukMobile)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	var pe *otp.ProviderError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, otp.ProviderUnavailable, pe.Kind)
	_, err = f.v.Status(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrNotFound)
	ev := f.events.last()
	assert.Equal(t, otp.EventFailed, ev.Kind)
	assert.Equal(t, "provider_unavailable", ev.Class)
}

func TestProviderFailureOnCheckUsesTheAttempt(t *testing.T) {
	f := newFixture(t, otp.Config{MaxAttempts: 2}, otptest.ProviderConfig{})
	f.start(t)
	f.p.FailNext(otp.OpCheck, otptest.Fault{}, otptest.Fault{})
	_, err := f.v.Check(ctx, sessionKey, fixedCode)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	st, err := f.v.Status(ctx, sessionKey)
	require.NoError(t, err)
	assert.Equal(t, 1, st.AttemptsLeft)
	_, err = f.v.Check(ctx, sessionKey, fixedCode)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	_, err = f.v.Status(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrNotFound, "the last attempt is used: burned")
}

func TestProviderReturningNoIDIsAnError(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	v := f.verifier(t, emptyIDProvider{f.p}, f.store, otp.Config{})
	_, err := v.Start(ctx, sessionKey, ukMobile)
	assert.ErrorIs(t, err, otp.ErrProviderRejected)
	_, err = v.Status(ctx, sessionKey)
	assert.ErrorIs(t, err, otp.ErrNotFound)
}

type emptyIDProvider struct{ *otptest.Provider }

func (emptyIDProvider) Send(context.Context, otp.SendRequest) (otp.Ref, error) { return otp.Ref{}, nil }

func TestStoreUnavailable(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	down := fmtStoreErr()
	fs := &faultyStore{Store: f.store}
	v := f.verifier(t, f.p, fs, otp.Config{})

	fs.failGet = down
	_, err := v.Start(ctx, sessionKey, ukMobile)
	require.ErrorIs(t, err, otp.ErrStoreUnavailable)
	assert.Zero(t, f.p.Calls(otp.OpStart), "nothing sent when the store cannot be read")

	fs.failGet, fs.failPut = nil, down
	_, err = v.Start(ctx, sessionKey, ukMobile)
	require.ErrorIs(t, err, otp.ErrStoreUnavailable)
	assert.Equal(t, 1, f.p.Calls(otp.OpStart))
	assert.Equal(t, 1, f.p.Calls(otp.OpCancel), "a code that cannot be checked is withdrawn")
	assert.Zero(t, f.p.Pending())

	fs.failPut = nil
	_, err = v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)
	fs.failAdd = down
	_, err = v.Check(ctx, sessionKey, fixedCode)
	require.ErrorIs(t, err, otp.ErrStoreUnavailable)
	assert.Zero(t, f.p.Calls(otp.OpCheck))
	assert.Equal(t, "store_unavailable", otp.ErrorClass(err))
}

func fmtStoreErr() error {
	return errors.Join(otp.ErrStoreUnavailable, errors.New("dial tcp: connection refused"))
}

func TestContextReachesTheProvider(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.p.SetDelay(time.Minute)
	c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := f.v.Start(c, sessionKey, ukMobile)
	require.ErrorIs(t, err, otp.ErrProviderUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestTwoVerifiersDoNotInterfere(t *testing.T) {
	f := newFixture(t, otp.Config{Limits: otp.Limits{PerNumber: otp.Limit{N: 1, Per: time.Hour}}}, otptest.ProviderConfig{})
	other := newFixture(t, otp.Config{Limits: otp.Limits{PerNumber: otp.Limit{N: 1, Per: time.Hour}}}, otptest.ProviderConfig{})
	f.start(t)
	other.start(t)
	_, err := other.v.Status(ctx, sessionKey)
	require.NoError(t, err)
	require.NoError(t, f.v.Cancel(ctx, sessionKey))
	_, err = other.v.Status(ctx, sessionKey)
	assert.NoError(t, err)
}

func TestNewVerifierValidatesConfig(t *testing.T) {
	p := otptest.NewProvider(otptest.ProviderConfig{})
	s := memstore.New(memstore.Config{})
	defer s.Close()
	for name, cfg := range map[string]otp.Config{
		"code too short":     {CodeLength: 3},
		"code too long":      {CodeLength: 11},
		"negative ttl":       {TTL: -time.Second},
		"negative attempts":  {MaxAttempts: -1},
		"negative cooldown":  {ResendCooldowns: []time.Duration{time.Second, -time.Second}},
		"unknown region":     {DefaultRegion: "XX"},
		"lowercase region":   {DefaultRegion: "gb"},
		"unknown allowed":    {Guard: otp.Guard{AllowedRegions: []string{"GB", "ZZ"}}},
		"unknown denied":     {Guard: otp.Guard{DeniedRegions: []string{"ZZ"}}},
		"unknown code":       {Guard: otp.Guard{DeniedCallingCodes: []int{999}}},
		"unknown type":       {Guard: otp.Guard{NumberTypes: map[otp.Channel][]otp.NumberType{otp.SMS: {"landline"}}}},
		"types for email":    {Guard: otp.Guard{NumberTypes: map[otp.Channel][]otp.NumberType{otp.Email: {otp.NumberMobile}}}},
		"range digits":       {Guard: otp.Guard{RangeDigits: map[string]int{"GB": 9}}},
		"bad test code":      {TestNumbers: []otp.TestNumber{{Number: "+15555550100", Code: "12"}}},
		"bad test number":    {TestNumbers: []otp.TestNumber{{Number: "nope", Code: "123456"}}},
		"limit without rate": {Limits: otp.Limits{PerNumber: otp.Limit{N: 3}}},
	} {
		_, err := otp.NewVerifier(p, s, cfg)
		assert.Error(t, err, name)
		if err != nil {
			assert.True(t, strings.HasPrefix(err.Error(), "otp: "), err.Error())
		}
	}
	_, err := otp.NewVerifier(nil, s, otp.Config{})
	assert.Error(t, err)
	_, err = otp.NewVerifier(p, nil, otp.Config{})
	assert.Error(t, err)
	_, err = otp.NewVerifier(p, s, otp.Config{})
	assert.NoError(t, err)
}

func TestEveryOperationRejectsBadKeys(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	for _, key := range []string{"", strings.Repeat("k", otp.MaxKeyLen+1)} {
		_, err := f.v.Start(ctx, key, ukMobile)
		assert.ErrorIs(t, err, otp.ErrInvalidKey)
		_, err = f.v.Check(ctx, key, fixedCode)
		assert.ErrorIs(t, err, otp.ErrInvalidKey)
		_, err = f.v.Resend(ctx, key)
		assert.ErrorIs(t, err, otp.ErrInvalidKey)
		assert.ErrorIs(t, f.v.Cancel(ctx, key), otp.ErrInvalidKey)
		_, err = f.v.Status(ctx, key)
		assert.ErrorIs(t, err, otp.ErrInvalidKey)
	}
	assert.Zero(t, f.p.Calls(otp.OpStart)+f.p.Calls(otp.OpCheck)+f.p.Calls(otp.OpResend)+f.p.Calls(otp.OpCancel))
	// The longest key allowed works.
	long := strings.Repeat("k", otp.MaxKeyLen)
	_, err := f.v.Start(ctx, long, ukMobile)
	require.NoError(t, err)
	_, err = f.v.Check(ctx, long, fixedCode)
	assert.NoError(t, err)
}

// slowWinner holds the first check the vendor accepts until a later check
// has been answered, so that the loser finishes first.
type slowWinner struct {
	*otptest.Provider
	first   atomic.Bool
	release chan struct{}
}

func (p *slowWinner) Check(ctx context.Context, ref otp.Ref, code string) error {
	err := p.Provider.Check(ctx, ref, code)
	if err == nil && p.first.CompareAndSwap(false, true) {
		<-p.release
	}
	return err
}

// A check the vendor answers "not found" because a concurrent check has
// just consumed the code there must not take the verification away from
// that check.
func TestLosingCheckDoesNotUndoTheWinner(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	p := &slowWinner{Provider: f.p, release: make(chan struct{})}
	v := f.verifier(t, p, f.store, otp.Config{})
	_, err := v.Start(ctx, sessionKey, ukMobile)
	require.NoError(t, err)

	won := make(chan error, 1)
	go func() {
		_, err := v.Check(ctx, sessionKey, fixedCode)
		won <- err
	}()
	require.Eventually(t, p.first.Load, time.Second, time.Millisecond)
	_, err = v.Check(ctx, sessionKey, fixedCode)
	require.ErrorIs(t, err, otp.ErrNotFound, "the vendor has consumed it")
	close(p.release)
	require.NoError(t, <-won, "the check that won at the vendor succeeds")
}
