"""The parts of the concept detector (`Sam3Model`): geometry encoder, DETR encoder / decoder,
scoring and mask head."""
