//go:build !linux

package cli

import (
	"os"
	"time"
)

func reopenDirect(*os.File) (*os.File, error) { return nil, errNoDirectIO }

func processCPU() time.Duration { return 0 }
