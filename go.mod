module github.com/keel-hv/keel

go 1.26.4

require github.com/usbarmory/tamago v1.26.5

require golang.org/x/arch v0.23.0
