// The AMI module: aws CLI argument building, JSON decoding, waiting, the AMI table.
