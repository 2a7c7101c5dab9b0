/**
 * Boxes: the .box format, the box store, catalogs and downloads.
 * (Uploading into pools lives in upload.ts; building in src/build/.)
 */
export * from './metadata.js';
export * from './format.js';
export * from './version.js';
export * from './download.js';
export * from './catalog.js';
export * from './store.js';
