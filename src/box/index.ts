/**
 * Boxes: the .box format, the box store, catalogs and downloads.
 * (Uploading into pools lives in upload.ts; building in src/build/.)
 */
export * from './metadata.js';
export * from './format.js';
export * from './version.js';
export * from './download.js';
export * from './catalog.js';
// The box store (its shared helpers stay out of this barrel):
export { boxDir, boxesDir, escapeBoxName, lockPath, PROVIDER_DIR, RECORD_FILE, RESERVED_FILES, unescapeBoxName, UPLOADS_FILE, validateBoxName, validateBoxVersion, type BoxRef, type StoreOptions } from './store-paths.js';
export * from './stored-boxes.js';
export { forgetUpload, listUploads, recordUpload, toUploadBox, uploadLock, type BoxUpload } from './upload-records.js';
export * from './add-box.js';
export * from './remove-box.js';
export * from './describe-store.js';
