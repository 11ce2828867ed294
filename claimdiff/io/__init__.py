"""Reading what others wrote: URIs, manifests and images, through fsspec."""
