package console_test

import (
	"testing"

	"github.com/kgate/kgate/internal/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }
