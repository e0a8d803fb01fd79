package otp

import "github.com/nyaruka/phonenumbers"

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
