//go:build !linux

package cli

import (
	"errors"
	"os"
	"time"
)

const directIO = false

func reopenDirect(*os.File) (*os.File, error) { return nil, errors.New("O_DIRECT is Linux only") }

func processCPU() time.Duration { return 0 }
