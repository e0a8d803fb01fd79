package otp

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"github.com/stretchr/testify/require"
)

// classify must agree with phonenumbers on every example number of every
// region and type, and on many numbers near them and at random.
func TestClassifyMatchesPhonenumbers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var nsns []string
	callingCodes := phonenumbers.GetSupportedCallingCodes()
	for region := range phonenumbers.GetSupportedRegions() {
		for typ := phonenumbers.FIXED_LINE; typ < phonenumbers.UNKNOWN; typ++ {
			if n := phonenumbers.GetExampleNumberForType(region, typ); n != nil {
				nsns = append(nsns, strconv.Itoa(int(n.GetCountryCode()))+" "+phonenumbers.GetNationalSignificantNumber(n))
			}
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		if n := phonenumbers.GetExampleNumberForNonGeoEntity(cc); n != nil {
			nsns = append(nsns, strconv.Itoa(cc)+" "+phonenumbers.GetNationalSignificantNumber(n))
		}
	}
	checked := 0
	for _, s := range nsns {
		cc, nsn, _ := strings.Cut(s, " ")
		// The example, then neighbours: one digit changed, one added, one
		// dropped, and random numbers of the same length.
		variants := []string{nsn, nsn + "1", nsn[:len(nsn)-1]}
		for range 8 {
			b := []byte(nsn)
			b[rng.IntN(len(b))] = byte('0' + rng.IntN(10))
			variants = append(variants, string(b))
			r := make([]byte, len(nsn))
			for i := range r {
				r[i] = byte('0' + rng.IntN(10))
			}
			variants = append(variants, string(r))
		}
		for _, v := range variants {
			num, err := phonenumbers.Parse("+"+cc+v, "")
			if err != nil {
				continue
			}
			m, typ := classify(num)
			region := ""
			if m != nil {
				region = m.region
			}
			require.Equal(t, phonenumbers.GetRegionCodeForNumber(num), region, "+%s %s", cc, v)
			require.Equal(t, phonenumbers.GetNumberType(num), typ, "+%s %s", cc, v)
			require.Equal(t, phonenumbers.IsValidNumber(num), typ != phonenumbers.UNKNOWN, "+%s %s", cc, v)
			checked++
		}
	}
	require.Greater(t, checked, 20_000)
	require.Greater(t, len(callingCodes), 200)
}
