package wot

import (
	"fmt"
	"strings"

	"github.com/aura-p2p/aura/internal/core"
)

// Level is a trust level. The order is meaningful: None < Low < Medium <
// High < Full, and transitive trust works on the integer values.
type Level uint8

// Trust levels.
const (
	LevelNone Level = iota
	LevelLow
	LevelMedium
	LevelHigh
	LevelFull
)

var levelNames = [...]string{"none", "low", "medium", "high", "full"}

// Valid reports whether l is one of the five levels.
func (l Level) Valid() bool { return l <= LevelFull }

func (l Level) String() string {
	if !l.Valid() {
		return fmt.Sprintf("level(%d)", uint8(l))
	}
	return levelNames[l]
}

// ParseLevel accepts the lowercase names printed by String, case-insensitively.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if strings.EqualFold(s, n) {
			return Level(i), nil
		}
	}
	return LevelNone, fmt.Errorf("trust level %q: want one of none, low, medium, high, full: %w", s, core.ErrInvalidArgument)
}
