package plan

import (
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// Fabric is what one image's build gets of the variant's fabric stack: the
// variant flags (WITH_OFI, WITH_NCCL) limited to what the catalog says the
// image takes (catalog.Fabric), as the previous images had it. The tags
// still carry the variant's suffix (-mpi-ofi) for every image.
type Fabric struct {
	// OFI: Open MPI on libfabric (else on MOFED and UCX, with WITH_MPI=1).
	OFI bool
	// NCCL: NCCL and GDRCopy built into the CUDA base (/container/nccl).
	NCCL bool
	// AWSPlugin: the AWS OFI-NCCL plugin built into the framework image
	// (/container/aws).
	AWSPlugin bool
}

// FabricOf is img's Fabric under s. A framework image has its base's OFI
// and NCCL.
func FabricOf(img catalog.Image, s variant.Settings) (Fabric, error) {
	if !s.MPI || img.Accel == catalog.ROCm {
		return Fabric{}, nil
	}
	base := img
	if img.Base != "" {
		b, err := catalog.Lookup(img.Base)
		if err != nil {
			return Fabric{}, err
		}
		base = b
	}
	f := Fabric{
		OFI:  s.OFI && base.Fabric.OFI,
		NCCL: s.NCCL && base.Fabric.NCCL && base.Accel == catalog.CUDA,
	}
	f.AWSPlugin = !img.IsBase() && f.OFI && f.NCCL && img.Fabric.AWSPlugin
	return f, nil
}
