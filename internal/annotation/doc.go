// Package annotation decodes the YAML values of the impersonation
// annotations that tenants write on ServiceAccounts, such as
//
//	aws.auth.fluxcd.io/assume-role: |
//	  roleARN: arn:aws:iam::222222222222:role/target
//	  useServiceAccount: true
//
// A controller that serves every tenant decodes them on every reconcile of
// every object, so a value must have one meaning only, to this library and
// to an admission policy alike, and decoding any value, hostile or not, must
// be cheap.
//
// # The YAML subset
//
// A value is YAML 1.2 with these restrictions, each refused with an *Error
// that says what to change:
//
//   - at most MaxValueBytes bytes, MaxIndicators indicators and MaxNesting
//     levels, checked on the bytes before any parsing;
//   - UTF-8 with printable characters only: no control characters (tab, CR
//     and LF aside), no byte order mark, no NEL, U+2028 or U+2029, which
//     YAML 1.1 readers (yaml.v3 among them) take for line breaks;
//   - exactly one document: no second one after '---', nothing after '...';
//     no '%YAML' or '%TAG' directives;
//   - a mapping at the top;
//   - no anchors ('&a'), aliases ('*a'), merge keys ('<<') or tags ('!!str',
//     '!!binary', '!foo', '!' alike);
//   - plain scalars resolve by the YAML 1.2 core schema: true, True, TRUE,
//     false, False and FALSE are booleans; 12345, 0o17, 0x1F, 1.5 and .inf
//     are numbers; ~, null and an empty value are null; everything else,
//     such as yes, on, y or 1_000, is a string;
//   - a boolean field takes a plain boolean only, a string field a string
//     only (a number or boolean must be quoted), a whole-number field a
//     core-schema integer only; a string field tagged annotation:"duration"
//     refuses a bare number by asking for a unit ("3600s"), since quoting
//     it would not make it a duration; null is refused for every field, so
//     a field is either absent or set;
//   - every key names a field exactly, case included ('roleArn' gets "did
//     you mean 'roleARN'?"), and no key appears twice.
//
// # Limits
//
// Decoding any value of up to MaxValueBytes, hostile ones included,
// allocates under half a MiB: TestDecodeAdversarialMemory asserts 1 MiB for
// every case of a corpus of hostile values (anchor bombs, billion laughs,
// deep nesting, 10k items, huge scalars, control bytes, ...), each at the
// limits. Its time is yaml.v3's scanning, 30 to 70 ns a byte on a slow
// shared 2-core machine: up to a few ms for a 32 KiB value
// (BenchmarkDecodeAdversarial). Errors are at most a few hundred bytes:
// tenant text in them goes through internal/quote.
//
// # Memo
//
// Decode remembers decoded values, up to DefaultMemoBytes of values and
// decoded forms, so that a value seen before costs a map lookup and a copy,
// not a parse (BenchmarkDecodeMemoHit). It never remembers a value it
// refused.
package annotation
