// Linux errno values that os.constants.errno does not list. The one place they are written.

/** The bdev or the server is shutting down; NBD has an error value of the same number. */
export const ESHUTDOWN = 108;
/** The remote end of an I/O failed (a device's own error). */
export const EREMOTEIO = 121;
