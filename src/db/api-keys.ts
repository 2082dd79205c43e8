/**
 * API keys in PostgreSQL. A key is 32 random bytes; only its SHA-256 is stored (the key itself is
 * shown once, at creation). A fast hash is the right tool here, unlike for passwords: a 256-bit
 * random key cannot be guessed or brute-forced from its hash, and a deterministic hash lets the
 * server find a key with one indexed lookup (`key_hash` is UNIQUE) instead of trying every row.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';

/** Every key starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const API_KEY_PREFIX = 'corgi_';

export interface ApiKey {
  id: string;
  name: string;
  admin: boolean;
  createdAt: string;
  revokedAt: string | null;
}

/** What a verified key grants: who it is and whether it may use the admin routes. */
export interface VerifiedKey {
  id: string;
  name: string;
  admin: boolean;
}

/** The stored form of a key. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new random key: the prefix then 32 bytes as base64url (43 characters). */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** Creates a key and returns its id and the key itself, which is not stored and cannot be shown again. */
export async function createApiKey(
  pool: pg.Pool,
  options: { name: string; admin?: boolean },
): Promise<{ id: string; key: string }> {
  const name = options.name.trim();
  if (name === '') throw new Error('name: must not be empty');
  const id = randomUUID();
  const key = generateApiKey();
  await pool.query('INSERT INTO api_keys (id, name, key_hash, admin) VALUES ($1, $2, $3, $4)', [
    id,
    name,
    hashApiKey(key),
    options.admin ?? false,
  ]);
  return { id, key };
}

/** Every key, newest first, revoked ones included (with `revokedAt`). Hashes never leave the database. */
export async function listApiKeys(pool: pg.Pool): Promise<ApiKey[]> {
  const { rows } = await pool.query(
    'SELECT id, name, admin, created_at, revoked_at FROM api_keys ORDER BY created_at DESC, id',
  );
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    admin: row.admin,
    createdAt: new Date(row.created_at).toISOString(),
    revokedAt: row.revoked_at ? new Date(row.revoked_at).toISOString() : null,
  }));
}

/**
 * Revokes a key. Its sessions stay (and stay invisible to everyone else); the key stops working
 * at once on a fresh lookup. Returns false when no key has that id or it was already revoked.
 */
export async function revokeApiKey(pool: pg.Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL',
    [id],
  );
  return (rowCount ?? 0) > 0;
}

/** The live (not revoked) key matching `key`, or null. */
export async function findApiKey(pool: pg.Pool, key: string): Promise<VerifiedKey | null> {
  const { rows } = await pool.query(
    'SELECT id, name, admin FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
    [hashApiKey(key)],
  );
  return rows.length === 0 ? null : { id: rows[0].id, name: rows[0].name, admin: rows[0].admin };
}
