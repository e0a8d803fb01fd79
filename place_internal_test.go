package otp

import (
	"testing"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Check gives a verified send's token back to the range and breakers its
// Start took from, so it must place a number exactly where Start did, from
// what the Verification keeps (To and Region): for every region, every
// number type and every non-geographic code.
func TestCheckPlacesANumberWhereStartDid(t *testing.T) {
	g, err := newGuard(Guard{RangeDigits: map[string]int{"GB": 2, "IS": 5, "CA": 3}})
	require.NoError(t, err)
	v := &Verifier{guard: g}
	types := []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.TOLL_FREE,
		phonenumbers.VOIP, phonenumbers.PREMIUM_RATE, phonenumbers.UAN, phonenumbers.PAGER}
	var numbers []*phonenumbers.PhoneNumber
	for r := range phonenumbers.GetSupportedRegions() {
		for _, typ := range types {
			if n := phonenumbers.GetExampleNumberForType(r, typ); n != nil {
				numbers = append(numbers, n)
			}
		}
	}
	nonGeo := 0
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		if n := phonenumbers.GetExampleNumberForNonGeoEntity(cc); n != nil {
			numbers, nonGeo = append(numbers, n), nonGeo+1
		}
	}
	require.Greater(t, len(numbers), 1000)
	require.Greater(t, nonGeo, 5)
	checked := 0
	for _, n := range numbers {
		d, err := v.normalize(phonenumbers.Format(n, phonenumbers.E164), SMS)
		if err != nil || d.region == "" {
			continue // an example the library itself calls invalid
		}
		checked++
		assert.Equal(t, d.place, g.place(d.to, regionInfo(d.to, d.region)), "%s (%s)", MaskPhone(d.to), d.region)
	}
	assert.Greater(t, checked, 1000)
}
