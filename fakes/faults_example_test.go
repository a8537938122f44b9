package fakes_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/identitychain/auth/fakes"
)

// Throttle the first AssumeRole, as STS does under load, and watch the real
// SDK client meet it and then get through.
func ExampleAWSSTS_InjectFault() {
	ctx := context.Background()
	s := fakes.StartAWSSTS(fakes.AWSSTSOptions{})
	defer s.Close()
	s.AllowAssumeRole("arn:aws:iam::123456789012:role/controller", "arn:aws:iam::210987654321:role/tenant")
	throttle := s.InjectFault(fakes.Throttle().Times(1).OnlyFor("AssumeRole"))

	c := s.IssueCredentials("arn:aws:iam::123456789012:role/controller")
	client := sts.New(sts.Options{
		Region:       "eu-central-1",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil }),
		Retryer:      aws.NopRetryer{}, // let the example see every attempt
	})
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::210987654321:role/tenant"),
		RoleSessionName: aws.String("flux"),
	}

	_, err := client.AssumeRole(ctx, in)
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		fmt.Println("first attempt:", apiErr.ErrorCode())
	}
	_, err = client.AssumeRole(ctx, in)
	fmt.Println("second attempt succeeded:", err == nil)
	fmt.Println("hits:", throttle.Hits(), "attempts:", s.Attempts())
	// Output:
	// first attempt: Throttling
	// second attempt succeeded: true
	// hits: 1 attempts: 2
}
