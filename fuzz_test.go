package otp_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

// FuzzStartCheck feeds arbitrary phone and code input through Start and
// Check. Whatever the input: no panic, only the package's typed errors, no
// send for a rejected number, no provider call for a malformed code, and no
// success for anything but the right code.
func FuzzStartCheck(f *testing.F) {
	for _, seed := range [][2]string{
		{"+447400123456", "123456"}, {"07400 123456", "000000"}, {"+1 (201) 555-0123", "12345"},
		{"", ""}, {"+", "1"}, {"++44", "１２３４５６"}, {"+999", "abcdef"}, {"tel:+447400123456", "12345\x00"},
		{"+44 7400 123456 ext. 9", "1234567"}, {"0044-7400-123456", " 12345"}, {"\xff\xfe", "\xff"},
		{strings.Repeat("9", 300), strings.Repeat("1", 300)}, {"jane@example.com", "123456"}, {"+800 1234 5678", "99999"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, phone, code string) {
		// A fresh Verifier per input, with the default limits: state kept
		// across inputs would make later inputs fail on a limit, and the
		// target test nothing.
		fx := newFixture(t, otp.Config{DefaultRegion: "GB"}, otptest.ProviderConfig{})
		const key = "fuzz"
		sends := fx.p.Calls(otp.OpStart)
		st, err := fx.v.Start(ctx, key, phone)
		if err != nil {
			require.True(t, errors.Is(err, otp.ErrInvalidPhone) || errors.Is(err, otp.ErrRegionNotAllowed), "%v", err)
			require.Equal(t, sends, fx.p.Calls(otp.OpStart), "a rejected number was sent to")
			require.True(t, utf8.ValidString(err.Error()), "the error is not text")
			if len(phone) >= 6 { // shorter inputs match by chance
				require.NotContains(t, err.Error(), phone, "the error echoes its input")
			}
			return
		}
		num, perr := phonenumbers.Parse(st.To, "")
		require.NoError(t, perr)
		require.True(t, phonenumbers.IsValidNumber(num))
		require.Equal(t, st.To, phonenumbers.Format(num, phonenumbers.E164))

		checks := fx.p.Calls(otp.OpCheck)
		_, err = fx.v.Check(ctx, key, code)
		switch {
		case code == fixedCode:
			require.NoError(t, err)
		case err == nil:
			t.Fatalf("code %q verified", code)
		case errors.Is(err, otp.ErrInvalidCode):
			require.Equal(t, checks, fx.p.Calls(otp.OpCheck), "a malformed code reached the provider")
		default:
			require.ErrorIs(t, err, otp.ErrWrongCode)
		}
		_ = fx.v.Cancel(ctx, key)
	})
}
