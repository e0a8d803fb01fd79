module github.com/otpkit/otp

go 1.26.8

require (
	github.com/nyaruka/phonenumbers v1.8.1
	golang.org/x/time v0.16.0
)

require (
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/text v0.23.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
