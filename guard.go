package otp

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/nyaruka/phonenumbers"
)

// Guard holds the rules against SMS pumping and other abuse. Pumping is the
// fraud where an attacker has a site send codes to numbers whose
// termination fees it shares: premium-rate and other costly number types,
// satellite and international-network numbers, or ranges of ordinary
// mobile numbers leased from a carrier. The static rules here (number
// types, region and calling-code lists) refuse a number before any limit
// is charged; the conversion breaker and the unverified budgets of
// [Limits] read whether sends are verified. The zero Guard applies the
// defaults documented on each field.
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

	// AllowedNetworkCodes lists the non-geographic calling codes that phone
	// channels may reach. All others (satellite: 870 Inmarsat, 881 Iridium
	// and Globalstar; international networks: 882, 883; 888 and the rest)
	// are refused with ErrRegionNotAllowed: their termination fees are the
	// highest there are and real sign-ups almost never use them. Default:
	// none.
	AllowedNetworkCodes []int

	// RangeDigits sets, per ISO region, how many trailing digits a number
	// range leaves out: carriers allocate, and pumping schemes lease,
	// numbers in such blocks. Regions not listed take 4 (blocks of 10,000)
	// where their numbers are 9 digits or longer and 3 where they are
	// shorter. Allowed 1 to 8.
	RangeDigits map[string]int

	// Conversion sets the conversion breaker; see [Conversion] for its
	// defaults. MinSends: -1 switches it off.
	Conversion Conversion

	// RecordOnly turns every guard rule into an observer: the number-type
	// gate, the region, calling-code and network lists, the conversion
	// breaker, and the PerRegion, Elsewhere, Total, unverified and
	// challenged limits. What they would deny is logged at Warn and
	// reported as an [EventFlagged], and the call goes on. Use it to
	// measure a new policy on real traffic before enforcing it; each limit
	// and the breaker also have a RecordOnly of their own. PerNumber,
	// PerClient, ChecksPerClient and operators' overrides are always
	// enforced. Default: false.
	RecordOnly bool
}

// guard is a Guard compiled for lookups.
type guard struct {
	types                   map[Channel]map[NumberType]bool
	allowRegion, denyRegion map[string]bool
	allowCode, denyCode     map[string]bool
	allowNetwork            map[string]bool
	rangeDigits             map[string]int
	conversion              Conversion
	recordOnly              bool
}

func newGuard(g Guard) (*guard, error) {
	c := &guard{types: map[Channel]map[NumberType]bool{}, recordOnly: g.RecordOnly,
		conversion: g.Conversion.withDefaults(), rangeDigits: map[string]int{}}
	if err := c.conversion.validate(); err != nil {
		return nil, err
	}
	for r, n := range g.RangeDigits {
		if !isRegion(r) || n < 1 || n > 8 {
			return nil, errorf("Guard.RangeDigits: %q: %d is not a region and 1 to 8 digits", r, n)
		}
		c.rangeDigits[r] = n
	}
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
	if c.allowNetwork, err = codeSet("AllowedNetworkCodes", g.AllowedNetworkCodes); err != nil {
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
	case d.region == nonGeographic && !g.allowNetwork[d.callingCode]:
		return fmt.Errorf("%w: calling code %s is a satellite or international network", ErrRegionNotAllowed, d.callingCode)
	case !g.types[c][d.typ]:
		return &NumberTypeError{Type: d.typ, Channel: c}
	}
	return nil
}
