//go:build tools

// Package engine only pins the main packages that build.sh compiles.
package engine

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
