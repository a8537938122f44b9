package fakes

import (
	"encoding/json"
	"net/http"
)

// The JSON protocols of the AWS services faked besides STS: awsJson1_1
// (ECR, ECR Public). The SDK reads the error code from the X-Amzn-ErrorType
// header or the __type member, and the message from the message member.

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
