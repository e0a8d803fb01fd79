package otp

import "context"

// Channel is how a code reaches the person.
type Channel string

// Channels a Provider may support. The Verifier passes the channel through;
// a provider that cannot deliver on one says so through Supports.
const (
	SMS      Channel = "sms"
	Voice    Channel = "voice"
	Email    Channel = "email"
	WhatsApp Channel = "whatsapp"
)

// Valid reports whether c is one of the known channels.
func (c Channel) Valid() bool {
	switch c {
	case SMS, Voice, Email, WhatsApp:
		return true
	}
	return false
}

// SendRequest is what the Verifier asks a Provider to deliver.
type SendRequest struct {
	// To is the destination, already validated and normalised: an E.164
	// phone number ("+447911123456") or, for the Email channel, an address.
	To      string
	Channel Channel
	// CodeLength is the number of digits the code must have.
	CodeLength int
	// Locale is the caller's language hint ("en-gb"); empty means the
	// provider's default.
	Locale string
	// Region is the ISO 3166 region of To as the Verifier classified it
	// ("GB"), empty for email or when unknown. A provider may pick
	// options by it; a Router routes by it without parsing To again.
	Region string
	// Client is the client ID the caller gave with [WithClient] (an IP
	// address or an account ID), empty when none, for a vendor's own
	// abuse controls (Twilio's Service Rate Limits and DeviceIp). It is
	// personal data: a provider sends it only where its config says so,
	// and never logs it or puts it in an error.
	Client string
}

// Ref identifies a verification at a vendor.
type Ref struct {
	// Provider is the Name of the provider that holds the verification. A
	// provider that routes to others (a failover) sets the inner name here.
	Provider string
	// ID is the vendor's request or PIN ID. It stays server-side.
	ID string
}

// Provider talks to one verification vendor. The vendor generates, delivers
// and checks the code; the Verifier never sees it.
//
// Implementations must be safe for concurrent use. Errors are the package's
// sentinels or a *[ProviderError]; they never hold a code or a secret.
type Provider interface {
	// Name identifies the provider in stored verifications, events and
	// errors. It must be stable across restarts and processes.
	Name() string

	// Supports reports whether the provider can deliver on channel c. The
	// Verifier asks before sending and fails with ErrUnsupportedChannel.
	Supports(c Channel) bool

	// Send asks the vendor to deliver a new code and returns the reference
	// the Verifier stores. An error means nothing is pending at the vendor,
	// as far as the provider can tell; it must not return an error after the
	// vendor accepted the request, unless it cannot know (a timeout), in which
	// case it returns a *ProviderError of Kind ProviderUnavailable with
	// NotSent false. NotSent is set only when the vendor surely did not act.
	Send(ctx context.Context, req SendRequest) (Ref, error)

	// Check asks the vendor whether code is right. It returns nil for the
	// right code; ErrWrongCode for a wrong one; ErrTooManyAttempts when the
	// vendor has burned the verification; ErrExpired when its code expired;
	// ErrNotFound when the vendor knows no such verification (including one
	// already verified); a *ProviderError for anything else.
	Check(ctx context.Context, ref Ref, code string) error
}

// Resender is implemented by providers that can deliver the pending code
// again, or move to the vendor's next channel, without starting a new
// verification. The Verifier uses it for [Verifier.Resend] when present and
// starts a new verification otherwise.
type Resender interface {
	// Resend asks the vendor to deliver the verification again. Errors are
	// as for Check. A wrapper whose provider for ref cannot resend returns
	// an error matching errors.ErrUnsupported, and the Verifier starts a
	// new verification instead.
	Resend(ctx context.Context, ref Ref) error
}

// Canceler is implemented by providers that can cancel a pending
// verification at the vendor. The Verifier calls it best effort when a
// verification is replaced, cancelled or burned; its error is logged, not
// returned, because the local record is already gone.
type Canceler interface {
	// Cancel asks the vendor to stop the verification. ErrNotFound means the
	// vendor no longer has it; errors.ErrUnsupported, from a wrapper, that
	// the provider for ref cannot cancel.
	Cancel(ctx context.Context, ref Ref) error
}

// DestinationSupporter is implemented by providers whose channels depend
// on the destination, as a [Router]'s do (each route has providers of its
// own). The Verifier asks it, before it takes any limit's token, whether a
// send on c to to (E.164, or an address for email) of region (ISO 3166, ""
// for email) can go out, and refuses one that cannot with
// ErrUnsupportedChannel. Without it, Supports answers for every
// destination.
type DestinationSupporter interface {
	SupportsDestination(c Channel, to, region string) bool
}
