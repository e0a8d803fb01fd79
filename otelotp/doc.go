// Package otelotp reports an [otp.Verifier]'s work to OpenTelemetry:
// metrics, and spans for Start, Check, Resend and Cancel with the provider
// call as a child span. It lives in a module of its own, so OpenTelemetry
// enters only the module graphs of those who import it.
//
//	tel, err := otelotp.New(otelotp.Config{MeterProvider: mp, TracerProvider: tp})
//	v, err := otp.NewVerifier(provider, store, otp.Config{Observer: tel})
//
// A [Telemetry] is an [otp.Observer]: the Verifier hands it each
// operation's context, so the operation's span is a child of the caller's
// (an HTTP server span, say), and each [otp.Event] of the operation.
//
// # Metrics
//
//	otp.sends              counter    codes sent (Start and Resend)            op, provider, channel, region
//	otp.checks             counter    checks, by result: verified or a class   op, provider, channel, region, otp.result
//	otp.verified           counter    right codes                              op, provider, channel, region
//	otp.denials            counter    refused or challenged by the abuse       op, provider, channel, region, otp.scope,
//	                                  defence, by scope; record-only too       otp.error.class, otp.record_only
//	otp.failures           counter    failed operations, by class              op, provider, channel, region, otp.error.class
//	otp.provider.duration  histogram  seconds in the provider's calls          op, provider, channel, region, otp.error.class
//
// The verified share of a region is otp.verified over otp.sends with
// otp.op "start", by otp.region; in PromQL
//
//	sum by (otp_region) (rate(otp_verified_total[1h])) / sum by (otp_region) (rate(otp_sends_total{otp_op="start"}[1h]))
//
// Real people verify and pumped numbers never do, so a region whose share
// falls far below its usual is being pumped. Scopes are the [otp.Scope]
// values the events carry: "guard" for the Guard's fixed rules (number
// types, region lists), "override" for an operator's block, "provider" for
// a vendor's refusal of the destination.
//
// No attribute holds a phone number, a key or a code. Metrics carry only
// the bounded attributes above; spans add the calling code and the number
// range, whose last digits are hidden ("+44740012xxxx").
//
// # Spans
//
// "otp.Start", "otp.Check", "otp.Resend" and "otp.Cancel", with an event
// per [otp.EventKind] and a child "otp.provider.Send" (Check, Resend) of
// kind client for the provider's call. The status is an error only for
// the service's failures (provider_unavailable, provider_account,
// provider_rejected, store_unavailable, other); a wrong code or a limit
// is recorded in otp.error.class but is not an error of the service.
package otelotp
