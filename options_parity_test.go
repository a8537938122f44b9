package auth_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	fluxauth "github.com/fluxcd/pkg/auth"
	awsauth "github.com/fluxcd/pkg/auth/aws"
	azureauth "github.com/fluxcd/pkg/auth/azure"
	gcpauth "github.com/fluxcd/pkg/auth/gcp"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/azure"
	"github.com/identitychain/auth/gcp"
)

// The drop-in promise: a call site compiles by swapping the import. These
// tables list what upstream exports for call sites, as read from its source
// (types qualified by import path; "auth." is the package the function
// belongs to, upstream's or ours), each next to ours and upstream's own.
// When upstream changes, TestUpstreamAPIMatchesTables fails and says which
// row to add or change; a row cannot name a function of ours that does not
// exist, so adding it is adding the function.

const (
	upstreamModule = "github.com/fluxcd/pkg/auth"
	ourModule      = "github.com/identitychain/auth"
)

type parityRow struct {
	name     string
	sig      string
	ours     any
	upstream any
}

var optionParity = []parityRow{
	{"WithAllowShellOut", "func() auth.Option", auth.WithAllowShellOut, fluxauth.WithAllowShellOut},
	{"WithAudiences", "func(...string) auth.Option", auth.WithAudiences, fluxauth.WithAudiences},
	{"WithCAData", "func(string) auth.Option", auth.WithCAData, fluxauth.WithCAData},
	{"WithCache", "func(github.com/fluxcd/pkg/cache.TokenCache, github.com/fluxcd/pkg/cache.InvolvedObject) auth.Option",
		auth.WithCache, fluxauth.WithCache},
	{"WithClient", "func(sigs.k8s.io/controller-runtime/pkg/client.Client) auth.Option", auth.WithClient, fluxauth.WithClient},
	{"WithClusterAddress", "func(string) auth.Option", auth.WithClusterAddress, fluxauth.WithClusterAddress},
	{"WithClusterResource", "func(string) auth.Option", auth.WithClusterResource, fluxauth.WithClusterResource},
	{"WithGitURL", "func(net/url.URL) auth.Option", auth.WithGitURL, fluxauth.WithGitURL},
	{"WithProxyURL", "func(net/url.URL) auth.Option", auth.WithProxyURL, fluxauth.WithProxyURL},
	{"WithSTSEndpoint", "func(string) auth.Option", auth.WithSTSEndpoint, fluxauth.WithSTSEndpoint},
	{"WithSTSRegion", "func(string) auth.Option", auth.WithSTSRegion, fluxauth.WithSTSRegion},
	{"WithScopes", "func(...string) auth.Option", auth.WithScopes, fluxauth.WithScopes},
	{"WithServiceAccountName", "func(string) auth.Option", auth.WithServiceAccountName, fluxauth.WithServiceAccountName},
	{"WithServiceAccountNamespace", "func(string) auth.Option", auth.WithServiceAccountNamespace, fluxauth.WithServiceAccountNamespace},
}

// adapterParity lists the functions of upstream's provider packages that
// take options: the SDK adapters. name is "<package>.<function>".
var adapterParity = []parityRow{
	{"aws.NewCredentialsProvider", "func(context.Context, ...auth.Option) github.com/aws/aws-sdk-go-v2/aws.CredentialsProvider",
		aws.NewCredentialsProvider, awsauth.NewCredentialsProvider},
	{"azure.NewTokenCredential", "func(context.Context, ...auth.Option) github.com/Azure/azure-sdk-for-go/sdk/azcore.TokenCredential",
		azure.NewTokenCredential, azureauth.NewTokenCredential},
	{"gcp.NewTokenSource", "func(context.Context, ...auth.Option) golang.org/x/oauth2.TokenSource",
		gcp.NewTokenSource, gcpauth.NewTokenSource},
}

func TestUpstreamAPIMatchesTables(t *testing.T) {
	t.Parallel()
	dir := upstreamDir(t)
	for _, tt := range []struct {
		name   string
		table  []parityRow
		parsed map[string]string
	}{
		{"options of the root package", optionParity, upstreamFuncs(t, dir, "", isOption)},
		{"adapters of the provider packages", adapterParity, upstreamAdapters(t, dir)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			want := map[string]string{}
			for _, row := range tt.table {
				want[row.name] = row.sig
			}
			g.Expect(tt.parsed).NotTo(BeEmpty(), "nothing parsed from %s", dir)
			for name, sig := range tt.parsed {
				g.Expect(want).To(HaveKeyWithValue(name, sig), "upstream %s in %s has %s %s: add it to "+
					"this library with the same parameters, and a row to the table", upstreamModule, dir, name, sig)
			}
			for name := range want {
				g.Expect(tt.parsed).To(HaveKey(name), "upstream no longer has %s: drop its row", name)
			}
		})
	}
}

// Ours has upstream's parameters and results exactly, except that it takes
// and returns our Option where upstream has its own; checked on the
// compiled functions, so the tables cannot drift from the code. (Compiled
// types name aliases by what they stand for, e.g. azcore.TokenCredential
// by azcore/internal/exported.TokenCredential, so they are compared with
// each other, and the source forms in the tables with upstream's source.)
func TestOurAPIHasUpstreamSignatures(t *testing.T) {
	t.Parallel()
	for _, row := range append(slices.Clone(optionParity), adapterParity...) {
		t.Run(row.name, func(t *testing.T) {
			g := NewWithT(t)
			upstream := funcSignature(reflect.TypeOf(row.upstream))
			g.Expect(upstream).To(ContainSubstring(upstreamModule + ".Option"))
			g.Expect(funcSignature(reflect.TypeOf(row.ours))).To(Equal(
				strings.ReplaceAll(upstream, upstreamModule+".Option", ourModule+".Option")))
		})
	}
}

// Each of our options is a pass-through: given the same arguments, it
// leaves the upstream view of our Options exactly as upstream's option
// leaves upstream's Options, so upstream's providers see the same thing.
func TestOptionsPassThroughToUpstream(t *testing.T) {
	t.Parallel()
	tc, err := cache.NewTokenCache(1)
	if err != nil {
		t.Fatal(err)
	}
	args := map[reflect.Type]reflect.Value{
		reflect.TypeFor[[]string]():             reflect.ValueOf([]string{"a,b", "c"}),
		reflect.TypeFor[client.Client]():        reflect.ValueOf(fake.NewClientBuilder().Build()),
		reflect.TypeFor[url.URL]():              reflect.ValueOf(url.URL{Scheme: "https", User: url.UserPassword("u", "p"), Host: "h:1", Path: "/p"}),
		reflect.TypeFor[cache.TokenCache]():     reflect.ValueOf(tc).Elem(),
		reflect.TypeFor[cache.InvolvedObject](): reflect.ValueOf(cache.InvolvedObject{Kind: "Bucket", Name: "b", Namespace: "ns", Operation: "reconcile"}),
	}
	for _, row := range optionParity {
		t.Run(row.name, func(t *testing.T) {
			g := NewWithT(t)
			fn := reflect.ValueOf(row.upstream)
			in := make([]reflect.Value, fn.Type().NumIn())
			for i := range in {
				typ := fn.Type().In(i)
				if typ.Kind() == reflect.String { // distinct, so swapped fields show
					in[i] = reflect.ValueOf(row.name + "-" + strconv.Itoa(i))
					continue
				}
				v, ok := args[typ]
				g.Expect(ok).To(BeTrue(), "no sample argument of type %s: add one", typ)
				in[i] = v
			}
			call := func(f any) reflect.Value {
				if fn.Type().IsVariadic() {
					return reflect.ValueOf(f).CallSlice(in)[0]
				}
				return reflect.ValueOf(f).Call(in)[0]
			}

			var want fluxauth.Options
			want.Apply(call(row.upstream).Interface().(fluxauth.Option))
			var got auth.Options
			call(row.ours).Interface().(auth.Option)(&got)

			g.Expect(got.Options).To(Equal(want))
			g.Expect(got.Options).NotTo(Equal(fluxauth.Options{}), "the option must set something")
			g.Expect(got.DefaultServiceAccount).To(BeEmpty())
			g.Expect(got.TokenCache).To(BeNil())
		})
	}
}

// upstreamDir is where the module cache holds the upstream version in go.mod.
func upstreamDir(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), "go", "list", "-m", "-f", "{{.Dir}}", upstreamModule).Output()
	if err != nil {
		t.Fatalf("failed to find the source of %s with go list: %v", upstreamModule, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatalf("go list found no source directory for %s: run go mod download", upstreamModule)
	}
	return dir
}

// upstreamAdapters returns the adapters of upstream's provider packages.
func upstreamAdapters(t *testing.T, dir string) map[string]string {
	t.Helper()
	all := map[string]string{}
	for _, pkg := range []string{"aws", "azure", "gcp"} {
		for name, sig := range upstreamFuncs(t, dir, pkg, takesOptions) {
			all[pkg+"."+name] = sig
		}
	}
	return all
}

// upstreamFuncs parses the non-test files of upstream's package in dir/sub
// and returns the signature of every exported top-level function that keep
// accepts.
func upstreamFuncs(t *testing.T, dir, sub string, keep func(*ast.FuncDecl, *typeNamer) bool) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, sub, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("failed to list the source of %s in %s: %v", upstreamModule, filepath.Join(dir, sub), err)
	}
	self := upstreamModule
	if sub != "" {
		self += "/" + sub
	}
	funcs := map[string]string{}
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		namer := newTypeNamer(f, self)
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() || !keep(fd, namer) {
				continue
			}
			funcs[fd.Name.Name] = namer.signature(fd.Type)
		}
	}
	return funcs
}

// isOption accepts "With…" functions returning the package's own Option.
func isOption(fd *ast.FuncDecl, n *typeNamer) bool {
	res := fd.Type.Results
	return strings.HasPrefix(fd.Name.Name, "With") && res != nil && len(res.List) == 1 &&
		n.name(res.List[0].Type) == "auth.Option"
}

// takesOptions accepts functions whose last parameter is ...auth.Option.
func takesOptions(fd *ast.FuncDecl, n *typeNamer) bool {
	params := fd.Type.Params.List
	return len(params) > 0 && n.name(params[len(params)-1].Type) == "...auth.Option"
}

// typeNamer names the types of one file by import path, and the types of
// the package under test (or of upstream's root package) as "auth.X".
type typeNamer struct {
	imports map[string]string // local name -> path
	self    string
}

func newTypeNamer(f *ast.File, self string) *typeNamer {
	n := &typeNamer{imports: map[string]string{}, self: self}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		local := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			local = imp.Name.Name
		}
		n.imports[local] = path
	}
	return n
}

func (n *typeNamer) signature(ft *ast.FuncType) string {
	var params, results []string
	for _, fl := range ft.Params.List {
		for range max(1, len(fl.Names)) {
			params = append(params, n.name(fl.Type))
		}
	}
	if ft.Results != nil {
		for _, fl := range ft.Results.List {
			for range max(1, len(fl.Names)) {
				results = append(results, n.name(fl.Type))
			}
		}
	}
	return joinSignature(params, results)
}

func (n *typeNamer) name(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		if token.IsExported(e.Name) {
			return qualify(n.self, e.Name)
		}
		return e.Name // predeclared
	case *ast.SelectorExpr:
		return qualify(n.imports[e.X.(*ast.Ident).Name], e.Sel.Name)
	case *ast.StarExpr:
		return "*" + n.name(e.X)
	case *ast.Ellipsis:
		return "..." + n.name(e.Elt)
	case *ast.ArrayType:
		return "[]" + n.name(e.Elt)
	default:
		return "unsupported type expression " + reflect.TypeOf(e).String()
	}
}

// funcSignature names a compiled function type as typeNamer names source,
// but with every package by its path, and aliases by what they stand for.
func funcSignature(ft reflect.Type) string {
	var params, results []string
	for i := range ft.NumIn() {
		p := ft.In(i)
		if ft.IsVariadic() && i == ft.NumIn()-1 {
			params = append(params, "..."+typeName(p.Elem()))
			continue
		}
		params = append(params, typeName(p))
	}
	for i := range ft.NumOut() {
		results = append(results, typeName(ft.Out(i)))
	}
	return joinSignature(params, results)
}

func typeName(t reflect.Type) string {
	switch {
	case t.Name() != "" && t.PkgPath() != "":
		return t.PkgPath() + "." + t.Name()
	case t.Name() != "":
		return t.Name()
	case t.Kind() == reflect.Pointer:
		return "*" + typeName(t.Elem())
	case t.Kind() == reflect.Slice:
		return "[]" + typeName(t.Elem())
	default:
		return t.String()
	}
}

// qualify names a type of upstream's source; its root package is "auth",
// as ours is in the tables.
func qualify(pkgPath, name string) string {
	if pkgPath == upstreamModule {
		return "auth." + name
	}
	return pkgPath + "." + name
}

func joinSignature(params, results []string) string {
	sig := "func(" + strings.Join(params, ", ") + ")"
	switch len(results) {
	case 0:
		return sig
	case 1:
		return sig + " " + results[0]
	}
	return sig + " (" + strings.Join(results, ", ") + ")"
}
