//go:build tools

// Package langhost only pins the Python language host that build.sh compiles.
package langhost

import _ "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"
