import { TsvirtError } from '@tsvirt/interfaces';

/**
 * An image file that is not what it claims to be: bad magic, a field out of
 * range, a table pointing outside the file, an unknown incompatible feature.
 * Nothing was changed.
 */
export class ImageFormatError extends TsvirtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('IMAGE_FORMAT', message, options);
  }
}

/** A valid image asking for something this library does not implement (encryption, say). */
export class ImageUnsupportedError extends TsvirtError {
  constructor(message: string) {
    super('IMAGE_UNSUPPORTED', message);
  }
}

/** Metadata found inconsistent while the image was in use; the image is marked corrupt. */
export class ImageCorruptError extends TsvirtError {
  constructor(message: string) {
    super('IMAGE_CORRUPT', message);
  }
}

/** A second writer, or a writer beside a reader, of the same image. */
export class ImageLockedError extends TsvirtError {
  constructor(message: string) {
    super('IMAGE_LOCKED', message);
  }
}

/** Bad arguments to an image tool (unknown option, impossible size). */
export class ImageToolError extends TsvirtError {
  constructor(message: string) {
    super('IMAGE_TOOL', message);
  }
}
