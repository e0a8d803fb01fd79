package otp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/nyaruka/phonenumbers"
)

// Guard holds the rules against SMS pumping and other abuse that a number
// must pass before any limit is charged or any provider asked. Pumping is
// the fraud where an attacker has a site send codes to numbers whose
// termination fees it shares: premium-rate and other costly number types,
// or ranges of ordinary mobile numbers in one country leased from a
// carrier. The zero Guard applies the defaults documented on each field;
// the matching limits (PerRange, PerCountry, Total) are in [Limits].
type Guard struct {
	// NumberTypes lists, per channel, the number types a code may go to; a
	// channel missing from the map takes its default. SMS and WhatsApp:
	// mobile, and fixed-line-or-mobile (where the numbering plan cannot
	// tell them apart). Voice: those and fixed lines. Premium-rate,
	// shared-cost, toll-free, VoIP, personal, pager, UAN and voicemail
	// numbers are refused by default. To switch the gate off for a channel,
	// list [AllNumberTypes]. Email has no number type.
	NumberTypes map[Channel][]NumberType

	// AllowedRegions, if not empty, lists the only ISO 3166 regions ("GB")
	// whose numbers are accepted. DeniedRegions lists regions refused even
	// if allowed. Both fail with ErrRegionNotAllowed. Default: none.
	AllowedRegions, DeniedRegions []string

	// AllowedCallingCodes, if not empty, lists the only country calling
	// codes (44) accepted; DeniedCallingCodes lists codes refused. Codes
	// cover regions that share one (1 is the US, Canada and the Caribbean;
	// 882 and 883 are international networks). Default: none.
	AllowedCallingCodes, DeniedCallingCodes []int

	// RecordOnly turns every guard rule into an observer: the number-type
	// gate, the region and calling-code lists, and the PerRange, PerCountry
	// and Total limits. What they would deny is logged at Warn and reported
	// as an [EventFlagged], and the call goes on. Use it to measure a new
	// policy on real traffic before enforcing it. Default: false.
	RecordOnly bool
}

// NumberType is the kind of a phone number, as libphonenumber classifies it.
type NumberType string

// Number types.
const (
	NumberMobile            NumberType = "mobile"
	NumberFixedLine         NumberType = "fixed-line"
	NumberFixedLineOrMobile NumberType = "fixed-line-or-mobile"
	NumberTollFree          NumberType = "toll-free"
	NumberPremiumRate       NumberType = "premium-rate"
	NumberSharedCost        NumberType = "shared-cost"
	NumberVoIP              NumberType = "voip"
	NumberPersonal          NumberType = "personal"
	NumberPager             NumberType = "pager"
	NumberUAN               NumberType = "uan"
	NumberVoicemail         NumberType = "voicemail"
)

// AllNumberTypes lists every NumberType; give it to Guard.NumberTypes to
// switch the gate off for a channel.
var AllNumberTypes = []NumberType{
	NumberMobile, NumberFixedLine, NumberFixedLineOrMobile, NumberTollFree, NumberPremiumRate,
	NumberSharedCost, NumberVoIP, NumberPersonal, NumberPager, NumberUAN, NumberVoicemail,
}

var defaultNumberTypes = map[Channel][]NumberType{
	SMS:      {NumberMobile, NumberFixedLineOrMobile},
	WhatsApp: {NumberMobile, NumberFixedLineOrMobile},
	Voice:    {NumberMobile, NumberFixedLineOrMobile, NumberFixedLine},
}

func numberType(t phonenumbers.PhoneNumberType) NumberType {
	switch t {
	case phonenumbers.MOBILE:
		return NumberMobile
	case phonenumbers.FIXED_LINE:
		return NumberFixedLine
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return NumberFixedLineOrMobile
	case phonenumbers.TOLL_FREE:
		return NumberTollFree
	case phonenumbers.PREMIUM_RATE:
		return NumberPremiumRate
	case phonenumbers.SHARED_COST:
		return NumberSharedCost
	case phonenumbers.VOIP:
		return NumberVoIP
	case phonenumbers.PERSONAL_NUMBER:
		return NumberPersonal
	case phonenumbers.PAGER:
		return NumberPager
	case phonenumbers.UAN:
		return NumberUAN
	case phonenumbers.VOICEMAIL:
		return NumberVoicemail
	}
	return ""
}

// NumberTypeError is returned when the guard refuses a number's type for a
// channel. It matches [ErrNumberTypeNotAllowed] and [ErrInvalidPhone].
type NumberTypeError struct {
	Type    NumberType
	Channel Channel
}

// Error names the type and the channel.
func (e *NumberTypeError) Error() string {
	return "otp: number type not allowed: " + string(e.Type) + " numbers cannot receive " + string(e.Channel)
}

// Unwrap returns ErrNumberTypeNotAllowed and ErrInvalidPhone.
func (e *NumberTypeError) Unwrap() []error {
	return []error{ErrNumberTypeNotAllowed, ErrInvalidPhone}
}

// guard is a Guard compiled for lookups.
type guard struct {
	types                   map[Channel]map[NumberType]bool
	allowRegion, denyRegion map[string]bool
	allowCode, denyCode     map[string]bool
	recordOnly              bool
}

func newGuard(g Guard) (*guard, error) {
	c := &guard{types: map[Channel]map[NumberType]bool{}, recordOnly: g.RecordOnly}
	for ch, def := range defaultNumberTypes {
		types := def
		if given, ok := g.NumberTypes[ch]; ok {
			types = given
		}
		c.types[ch] = set(types)
	}
	for ch, types := range g.NumberTypes {
		if !ch.Valid() || ch == Email {
			return nil, errorf("Guard.NumberTypes: no number types for channel %q", ch)
		}
		for _, t := range types {
			if !slices.Contains(AllNumberTypes, t) {
				return nil, errorf("Guard.NumberTypes: unknown number type %q", t)
			}
		}
	}
	var err error
	if c.allowRegion, err = regionSet("AllowedRegions", g.AllowedRegions); err != nil {
		return nil, err
	}
	if c.denyRegion, err = regionSet("DeniedRegions", g.DeniedRegions); err != nil {
		return nil, err
	}
	if c.allowCode, err = codeSet("AllowedCallingCodes", g.AllowedCallingCodes); err != nil {
		return nil, err
	}
	if c.denyCode, err = codeSet("DeniedCallingCodes", g.DeniedCallingCodes); err != nil {
		return nil, err
	}
	return c, nil
}

func set[T comparable](xs []T) map[T]bool {
	m := make(map[T]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func regionSet(field string, regions []string) (map[string]bool, error) {
	for _, r := range regions {
		if !isRegion(r) {
			return nil, errorf("Guard.%s: %q is not a supported region", field, r)
		}
	}
	return set(regions), nil
}

func codeSet(field string, codes []int) (map[string]bool, error) {
	m := make(map[string]bool, len(codes))
	for _, c := range codes {
		if len(phonenumbers.GetRegionCodesForCountryCode(c)) == 0 {
			return nil, errorf("Guard.%s: %d is not a country calling code", field, c)
		}
		m[strconv.Itoa(c)] = true
	}
	return m, nil
}

// check applies the number rules to d for channel c.
func (g *guard) check(d destination, c Channel) error {
	if c == Email || d.test {
		return nil
	}
	switch {
	case len(g.allowRegion) > 0 && !g.allowRegion[d.region], g.denyRegion[d.region]:
		return fmt.Errorf("%w: %s", ErrRegionNotAllowed, d.region)
	case len(g.allowCode) > 0 && !g.allowCode[d.callingCode], g.denyCode[d.callingCode]:
		return fmt.Errorf("%w: calling code %s", ErrRegionNotAllowed, d.callingCode)
	case !g.types[c][d.typ]:
		return &NumberTypeError{Type: d.typ, Channel: c}
	}
	return nil
}

// guardLimits appends the guard's limits for one send to d: the total,
// the country and the number range.
func (v *Verifier) guardLimits(reqs []LimitRequest, d destination) []LimitRequest {
	l := v.cfg.Limits
	reqs = append(reqs, LimitRequest{Scope: ScopeTotal, Limit: l.Total})
	if d.callingCode == "" {
		return reqs
	}
	return append(reqs,
		LimitRequest{Scope: ScopeCountry, Key: d.callingCode, Limit: l.PerCountry},
		LimitRequest{Scope: ScopeRange, Key: d.to[:max(len(d.callingCode)+1, len(d.to)-l.RangeDigits)], Limit: l.PerRange})
}

// screen applies the number rules to d; in record-only mode it reports
// what it would deny and lets the call go on.
func (v *Verifier) screen(ctx context.Context, ev Event, d destination, c Channel) error {
	err := v.guard.check(d, c)
	if err != nil && v.guard.recordOnly {
		v.flag(ctx, ev, err)
		return nil
	}
	return err
}

// flag reports what the guard would have denied in record-only mode.
func (v *Verifier) flag(ctx context.Context, ev Event, err error) {
	ev.Err, ev.Class = err, ErrorClass(err)
	var rl *RateLimitError
	if errors.As(err, &rl) {
		ev.Scope = rl.Scope
	}
	v.emit(ctx, EventFlagged, ev)
}

// recordLimits, in record-only mode, charges the guard's limits apart from
// the enforced ones and reports a denial without failing the call.
func (v *Verifier) recordLimits(ctx context.Context, ev Event, d destination) {
	if !v.guard.recordOnly {
		return
	}
	buf := limitBufs.Get().(*limitBuf)
	defer limitBufs.Put(buf)
	if err := v.limiter.Allow(ctx, v.guardLimits(buf[:0], d)); err != nil {
		if errors.As(err, new(*RateLimitError)) {
			v.flag(ctx, ev, err)
		} else {
			v.log.LogAttrs(ctx, slog.LevelWarn, "otp: record-only limits failed", slog.String("error", err.Error()))
		}
	}
}
