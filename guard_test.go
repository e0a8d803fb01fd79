package otp_test

import (
	"bytes"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otptest"
)

var allChannels = otptest.ProviderConfig{Channels: []otp.Channel{otp.SMS, otp.Voice, otp.WhatsApp, otp.Email}}

func TestGuardNumberTypes(t *testing.T) {
	// An example number of typ: GB's, or the first region's that has one.
	gb := func(typ phonenumbers.PhoneNumberType) string {
		for _, r := range append([]string{"GB"}, slices.Sorted(maps.Keys(phonenumbers.GetSupportedRegions()))...) {
			if phonenumbers.GetExampleNumberForType(r, typ) != nil {
				return exampleNumber(t, r, typ)
			}
		}
		t.Fatalf("no example of type %v", typ)
		return ""
	}
	cases := []struct {
		name    string
		guard   otp.Guard
		number  string
		channel otp.Channel
		want    otp.NumberType // "" when allowed
	}{
		{"sms to mobile", otp.Guard{}, gb(phonenumbers.MOBILE), otp.SMS, ""},
		{"sms to premium rate", otp.Guard{}, gb(phonenumbers.PREMIUM_RATE), otp.SMS, otp.NumberPremiumRate},
		{"sms to shared cost", otp.Guard{}, gb(phonenumbers.SHARED_COST), otp.SMS, otp.NumberSharedCost},
		{"sms to toll free", otp.Guard{}, gb(phonenumbers.TOLL_FREE), otp.SMS, otp.NumberTollFree},
		{"sms to voip", otp.Guard{}, gb(phonenumbers.VOIP), otp.SMS, otp.NumberVoIP},
		{"sms to personal", otp.Guard{}, gb(phonenumbers.PERSONAL_NUMBER), otp.SMS, otp.NumberPersonal},
		{"sms to fixed line", otp.Guard{}, gb(phonenumbers.FIXED_LINE), otp.SMS, otp.NumberFixedLine},
		{"whatsapp to pager", otp.Guard{}, gb(phonenumbers.PAGER), otp.WhatsApp, otp.NumberPager},
		{"voice to fixed line", otp.Guard{}, gb(phonenumbers.FIXED_LINE), otp.Voice, ""},
		{"voice to premium rate", otp.Guard{}, gb(phonenumbers.PREMIUM_RATE), otp.Voice, otp.NumberPremiumRate},
		{"voip allowed by config", otp.Guard{NumberTypes: map[otp.Channel][]otp.NumberType{otp.SMS: {otp.NumberMobile, otp.NumberVoIP}}},
			gb(phonenumbers.VOIP), otp.SMS, ""},
		{"gate off for sms", otp.Guard{NumberTypes: map[otp.Channel][]otp.NumberType{otp.SMS: otp.AllNumberTypes}},
			gb(phonenumbers.PREMIUM_RATE), otp.SMS, ""},
		{"gate off for sms only", otp.Guard{NumberTypes: map[otp.Channel][]otp.NumberType{otp.SMS: otp.AllNumberTypes}},
			gb(phonenumbers.PREMIUM_RATE), otp.Voice, otp.NumberPremiumRate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, otp.Config{Guard: tc.guard}, allChannels)
			f.v = f.verifier(t, f.p, f.store, otp.Config{Guard: tc.guard})
			_, err := f.v.Start(ctx, sessionKey, tc.number, otp.WithChannel(tc.channel))
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, 1, f.p.Calls(otp.OpStart))
				return
			}
			require.ErrorIs(t, err, otp.ErrNumberTypeNotAllowed)
			require.ErrorIs(t, err, otp.ErrInvalidPhone)
			var nt *otp.NumberTypeError
			require.ErrorAs(t, err, &nt)
			assert.Equal(t, tc.want, nt.Type)
			assert.Equal(t, tc.channel, nt.Channel)
			assert.Equal(t, 0, f.p.Calls(otp.OpStart))
			assert.Equal(t, otp.EventFailed, f.events.last().Kind)
		})
	}
}

func TestGuardRegionsAndCallingCodes(t *testing.T) {
	us := exampleNumber(t, "US", phonenumbers.FIXED_LINE_OR_MOBILE)
	ca := exampleNumber(t, "CA", phonenumbers.FIXED_LINE_OR_MOBILE)
	cases := []struct {
		name   string
		guard  otp.Guard
		number string
		denied bool
	}{
		{"allowed region", otp.Guard{AllowedRegions: []string{"GB"}}, ukMobile, false},
		{"outside allowed regions", otp.Guard{AllowedRegions: []string{"GB"}}, us, true},
		{"denied region", otp.Guard{DeniedRegions: []string{"US"}}, us, true},
		{"deny wins over allow", otp.Guard{AllowedRegions: []string{"US"}, DeniedRegions: []string{"US"}}, us, true},
		{"other region of a denied-region code", otp.Guard{DeniedRegions: []string{"US"}}, ca, false},
		{"denied calling code covers its regions", otp.Guard{DeniedCallingCodes: []int{1}}, ca, true},
		{"allowed calling code", otp.Guard{AllowedCallingCodes: []int{44}}, ukMobile, false},
		{"outside allowed calling codes", otp.Guard{AllowedCallingCodes: []int{44}}, us, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
			f.v = f.verifier(t, f.p, f.store, otp.Config{Guard: tc.guard})
			_, err := f.v.Start(ctx, sessionKey, tc.number)
			if !tc.denied {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, otp.ErrRegionNotAllowed)
			assert.Equal(t, 0, f.p.Calls(otp.OpStart))
		})
	}
}

func TestGuardRecordOnlyDeniesNothingAndReportsEverything(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	cfg := otp.Config{
		Guard:  otp.Guard{RecordOnly: true, DeniedRegions: []string{"GB"}},
		Limits: otp.Limits{UnverifiedPerRange: otp.Limit{N: 1, Per: time.Hour}},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	f.v = f.verifier(t, f.p, f.store, cfg)
	premium := exampleNumber(t, "GB", phonenumbers.PREMIUM_RATE)
	_, err := f.v.Start(ctx, "k0", premium)
	require.NoError(t, err)
	_, err = f.v.Start(ctx, "k1", "+447400123001")
	require.NoError(t, err)
	_, err = f.v.Start(ctx, "k2", "+447400123002")
	require.NoError(t, err, "the range budget is recorded, not enforced")
	assert.Equal(t, 3, f.p.Calls(otp.OpStart))

	var flagged []error
	var scopes []otp.Scope
	for _, e := range f.events.all() {
		if e.Kind == otp.EventFlagged {
			flagged = append(flagged, e.Err)
			scopes = append(scopes, e.Scope)
		}
	}
	// premium: region (the first rule that fails); k1: region; k2: region
	// and range.
	require.Len(t, flagged, 4)
	assert.ErrorIs(t, flagged[0], otp.ErrRegionNotAllowed)
	assert.ErrorIs(t, flagged[3], otp.ErrChallengeRequired)
	assert.Equal(t, otp.ScopeRange, scopes[3])
	assert.Contains(t, logs.String(), "level=WARN msg=\"otp: flagged\"")
	assert.NotContains(t, logs.String(), "123002", "numbers are masked")

	// The enforced limits still hold in record-only mode.
	f.v = f.verifier(t, f.p, f.store, otp.Config{Guard: otp.Guard{RecordOnly: true},
		Limits: otp.Limits{PerNumber: otp.Limit{N: 1, Per: time.Hour}}})
	_, err = f.v.Start(ctx, "k3", ukMobile2)
	require.NoError(t, err)
	_, err = f.v.Start(ctx, "k4", ukMobile2)
	require.ErrorIs(t, err, otp.ErrRateLimited)
}

func TestResendAppliesTheGuard(t *testing.T) {
	f := newFixture(t, otp.Config{}, otptest.ProviderConfig{})
	f.v = f.verifier(t, f.p, f.store, otp.Config{Limits: otp.Limits{UnverifiedPerRange: otp.Limit{N: 1, Per: time.Hour}}})
	f.start(t)
	f.clock.Advance(time.Minute)
	_, err := f.v.Resend(ctx, sessionKey)
	var ce *otp.ChallengeError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, otp.ScopeRange, ce.Scope)
	assert.Equal(t, 0, f.p.Calls(otp.OpResend))
}
