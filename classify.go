package otp

import (
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// classify returns what phonenumbers.GetRegionCodeForNumber and
// phonenumbers.GetNumberType return for num, from the same metadata and by
// the same rules, in one pass over precompiled patterns. The library
// rebuilds each pattern's string, looks it up under a global lock and
// matches it twice on every use, which made these two calls cost more than
// the rest of a Start; TestClassifyMatchesPhonenumbers holds the two
// implementations equal.
//
// It returns the region's compiled metadata, nil where GetRegionCodeForNumber
// would return "".
func classify(num *phonenumbers.PhoneNumber) (*regionMetadata, phonenumbers.PhoneNumberType) {
	cc := int(num.GetCountryCode())
	regions := callingCodeMetadata(cc)
	if len(regions) == 0 {
		return nil, phonenumbers.UNKNOWN
	}
	var buf [32]byte
	nsn := appendNationalNumber(buf[:0], num)
	if len(regions) == 1 {
		return regions[0], regions[0].numberType(nsn)
	}
	// Several regions share the code: the first whose leading digits match,
	// or, for one without leading digits, whose patterns know the number.
	for _, m := range regions {
		if m.leading != nil {
			if m.leading.Match(nsn) {
				return m, m.numberType(nsn)
			}
		} else if typ := m.numberType(nsn); typ != phonenumbers.UNKNOWN {
			return m, typ
		}
	}
	return nil, phonenumbers.UNKNOWN
}

// nonGeographic is the region of non-geographic calling codes (800, 870,
// 881, 882, 883, ...).
const nonGeographic = "001"

// regionInfo returns the compiled metadata of region for to, an E.164
// number normalize placed in it; nil if unknown. The number, not the
// region, gives the calling code: the non-geographic region has several
// (800, 882, ...), and Check must place a number where Start did.
func regionInfo(to, region string) *regionMetadata {
	// Calling codes are 1 to 3 digits and prefix-free: the first prefix
	// whose code holds region is the number's code.
	for end := 2; end <= 4 && end <= len(to); end++ {
		cc, err := strconv.Atoi(to[1:end])
		if err != nil || cc == 0 {
			return nil
		}
		for _, m := range callingCodeMetadata(cc) {
			if m.region == region {
				return m
			}
		}
	}
	return nil
}

// regionMetadata is one region's number patterns, compiled.
type regionMetadata struct {
	region          string
	callingCode     string         // "44"
	group           string         // "+1" for a region that shares its code with a main one (CA, JM), else ""
	regionTarget    string         // RegionTarget(region).Key(), made once
	codeTarget      string         // the calling code's Target.Key()
	leading         *regexp.Regexp // nil when the region has no leading digits
	sameMobileFixed bool
	general, premium, tollFree, sharedCost, voip, personal, pager, uan, voicemail,
	fixed, mobile numberDesc
}

type numberDesc struct {
	lengths []int32
	pattern *regexp.Regexp
}

func (d *numberDesc) matches(nsn []byte) bool {
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.pattern.Match(nsn)
}

// appendNationalNumber appends what phonenumbers.GetNationalSignificantNumber
// returns, without its two allocations.
func appendNationalNumber(b []byte, num *phonenumbers.PhoneNumber) []byte {
	if num.GetItalianLeadingZero() {
		for range min(num.GetNumberOfLeadingZeros(), phonenumbers.MAX_LENGTH_FOR_NSN) {
			b = append(b, '0')
		}
	}
	return strconv.AppendUint(b, num.GetNationalNumber(), 10)
}

// numberType follows phonenumbers' getNumberTypeHelper, test for test.
func (m *regionMetadata) numberType(nsn []byte) phonenumbers.PhoneNumberType {
	switch {
	case !m.general.matches(nsn):
		return phonenumbers.UNKNOWN
	case m.premium.matches(nsn):
		return phonenumbers.PREMIUM_RATE
	case m.tollFree.matches(nsn):
		return phonenumbers.TOLL_FREE
	case m.sharedCost.matches(nsn):
		return phonenumbers.SHARED_COST
	case m.voip.matches(nsn):
		return phonenumbers.VOIP
	case m.personal.matches(nsn):
		return phonenumbers.PERSONAL_NUMBER
	case m.pager.matches(nsn):
		return phonenumbers.PAGER
	case m.uan.matches(nsn):
		return phonenumbers.UAN
	case m.voicemail.matches(nsn):
		return phonenumbers.VOICEMAIL
	case m.fixed.matches(nsn):
		if m.sameMobileFixed || m.mobile.matches(nsn) {
			return phonenumbers.FIXED_LINE_OR_MOBILE
		}
		return phonenumbers.FIXED_LINE
	case !m.sameMobileFixed && m.mobile.matches(nsn):
		return phonenumbers.MOBILE
	}
	return phonenumbers.UNKNOWN
}

var (
	// compiled maps a calling code to its []*regionMetadata. It is read on
	// every Start and written once per calling code: a sync.Map, so that
	// reads from many cores do not contend.
	compiled sync.Map

	// metadataByRegion indexes the library's metadata: by region, and by
	// calling code for the non-geographic entities ("001").
	metadataByRegion = sync.OnceValue(func() map[string]*phonenumbers.PhoneMetadata {
		coll, err := phonenumbers.MetadataCollection()
		if err != nil {
			return nil
		}
		out := make(map[string]*phonenumbers.PhoneMetadata, len(coll.GetMetadata()))
		for _, m := range coll.GetMetadata() {
			out[metadataKey(m.GetId(), int(m.GetCountryCode()))] = m
		}
		return out
	})
)

func metadataKey(region string, cc int) string {
	if region == "001" {
		return "001+" + strconv.Itoa(cc)
	}
	return region
}

// callingCodeMetadata returns the compiled metadata of every region sharing
// the calling code cc, in the library's order; it compiles them on first use.
func callingCodeMetadata(cc int) []*regionMetadata {
	if regions, ok := compiled.Load(cc); ok {
		return regions.([]*regionMetadata)
	}
	var regions []*regionMetadata
	for _, r := range phonenumbers.GetRegionCodesForCountryCode(cc) {
		m := metadataByRegion()[metadataKey(r, cc)]
		if m == nil {
			regions = nil
			break
		}
		rm := compileRegion(r, m)
		rm.callingCode = strconv.Itoa(cc)
		rm.regionTarget, rm.codeTarget = RegionTarget(r).Key(), CallingCodeTarget(cc).Key()
		if len(regions) > 0 { // the first is the code's main region
			rm.group = "+" + rm.callingCode
		}
		regions = append(regions, rm)
	}
	compiled.Store(cc, regions)
	return regions
}

func compileRegion(region string, m *phonenumbers.PhoneMetadata) *regionMetadata {
	desc := func(d *phonenumbers.PhoneNumberDesc) numberDesc {
		return numberDesc{lengths: d.GetPossibleLength(), pattern: regexp.MustCompile("^(?:" + d.GetNationalNumberPattern() + ")$")}
	}
	rm := &regionMetadata{
		region:          region,
		sameMobileFixed: m.GetSameMobileAndFixedLinePattern(),
		general:         desc(m.GetGeneralDesc()),
		premium:         desc(m.GetPremiumRate()),
		tollFree:        desc(m.GetTollFree()),
		sharedCost:      desc(m.GetSharedCost()),
		voip:            desc(m.GetVoip()),
		personal:        desc(m.GetPersonalNumber()),
		pager:           desc(m.GetPager()),
		uan:             desc(m.GetUan()),
		voicemail:       desc(m.GetVoicemail()),
		fixed:           desc(m.GetFixedLine()),
		mobile:          desc(m.GetMobile()),
	}
	if ld := m.GetLeadingDigits(); ld != "" {
		rm.leading = regexp.MustCompile("^(?:" + ld + ")")
	}
	return rm
}
