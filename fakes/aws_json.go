package fakes

import (
	"encoding/json"
	"net/http"
	"strings"
)

// The JSON protocols of the AWS services faked besides STS: awsJson1_1
// (ECR, ECR Public) and restJson1 (EKS). The SDK reads the error code from the
// X-Amzn-ErrorType header or the __type member, and the message from the
// message member.

const awsJSON11ContentType = "application/x-amz-json-1.1"

// awsJSONAuthCodes renames the authentication refusals of the fake STS
// (Query protocol codes) to those the JSON services answer with.
var awsJSONAuthCodes = map[string]string{
	"MissingAuthenticationToken": "MissingAuthenticationTokenException",
	"InvalidClientTokenId":       "UnrecognizedClientException",
	"ExpiredToken":               "ExpiredTokenException",
	"SignatureDoesNotMatch":      "InvalidSignatureException",
	"IncompleteSignature":        "IncompleteSignatureException",
}

// awsJSONAuthError is e as a JSON service reports it.
func awsJSONAuthError(e *awsError) *awsError {
	if code, ok := awsJSONAuthCodes[e.code]; ok {
		return &awsError{e.status, code, e.message}
	}
	return e
}

// writeAWSJSON writes v with the headers every AWS JSON service sets.
func writeAWSJSON(w http.ResponseWriter, contentType string, status int, requestID string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client hung up; nothing to tell
}

// writeAWSJSONError writes e in the error format of the JSON protocols.
func writeAWSJSONError(w http.ResponseWriter, contentType, requestID string, e *awsError) {
	w.Header().Set("X-Amzn-ErrorType", e.code)
	writeAWSJSON(w, contentType, e.status, requestID, map[string]string{"__type": e.code, "message": e.message})
}

// awsCanonicalRoleARN is the ARN of the role itself for a role ARN, with or
// without a path, or for an assumed-role session ARN, so that the two can
// be compared as EKS compares access entries:
// arn:aws:sts::1:assumed-role/name/session and arn:aws:iam::1:role/path/name
// both become arn:aws:iam::1:role/name. It returns "" for other ARNs.
func awsCanonicalRoleARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[4] == "" {
		return ""
	}
	partition, service, account, resource := parts[1], parts[2], parts[4], parts[5]
	var name string
	switch {
	case service == "iam" && strings.HasPrefix(resource, "role/"):
		path := strings.Split(resource, "/")
		name = path[len(path)-1]
	case service == "sts" && strings.HasPrefix(resource, "assumed-role/"):
		path := strings.Split(resource, "/")
		if len(path) != 3 {
			return ""
		}
		name = path[1]
	}
	if name == "" {
		return ""
	}
	return "arn:" + partition + ":iam::" + account + ":role/" + name
}
