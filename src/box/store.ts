/**
 * The box store.
 *
 * Where: `$VMENV_HOME`, else `$XDG_DATA_HOME/vmenv`, else `~/.local/share/vmenv`
 * (see vmenvHome), then:
 *
 *   boxes/
 *     <name>/<version>/libvirt/     one stored box: the archive's files as they were
 *                                   (metadata.json, box.img or the v2 disks, Vagrantfile)
 *       vmenv.json                  vmenv's record of it (StoredBoxRecord)
 *       uploads.json                where its disks were uploaded: [{ uri, pool, volume }]
 *     .locks/<name>@<version>.lock  held while the box is added, removed or its uploads change
 *     .locks/download-<hash>.lock   held while a URL is downloaded
 *     .downloads/<hash>.box[.part]  downloads (the .part file is resumed by the next attempt)
 *     .tmp/                         unpacking and removal happen here, then a rename
 *
 * A `/` in a box name is stored as `-VAGRANTSLASH-`, as Vagrant does (`vmenv/tiny` →
 * `vmenv-VAGRANTSLASH-tiny`). Adding unpacks into .tmp (same filesystem), verifies,
 * then renames into place under the box's lock, so a box is either there whole or not
 * at all, and two processes adding the same box end with one intact copy.
 * The machine index (project/machine-index.ts) says which machines use which box.
 */
export { type StoreOptions, boxesDir, PROVIDER_DIR, RECORD_FILE, UPLOADS_FILE, RESERVED_FILES, escapeBoxName, unescapeBoxName, validateBoxName, validateBoxVersion, type BoxRef, boxDir, lockPath } from './store-paths.js';
export { type StoredBoxDisk, type StoredBoxRecord, type StoredBox, getBox, listBoxes, boxVersions, findBox, sizeOnDisk } from './stored-boxes.js';
export { type BoxUpload, listUploads, recordUpload, forgetUpload, uploadLock, toUploadBox } from './upload-records.js';
export { type BoxListEntry, type BoxListing, describeStore } from './describe-store.js';
export { type BoxLibvirt, type LibvirtOpener, type RemoveBoxOptions, type RemoveBoxResult, removeBox } from './remove-box.js';
export { type AddEvent, type AddBoxOptions, type AddBoxResult, BoxAlreadyStoredError, addBox, type AddArchiveOptions, addBoxArchive } from './add-box.js';
