/**
 * The JSON Schema (draft 2020-12) of vmenv.yaml, generated from the descriptors of
 * fields.ts, so editors (e.g. the YAML language server) complete keys and show their
 * descriptions. It describes what the validator accepts; the validator stays the judge of
 * the finer checks (URIs, subnets, version constraints, merged values).
 */
import { EXTENSION_PREFIX, type Field, type ObjectField, rootField, type TaggedField } from './fields.js';
import { SIZE_PATTERN } from './units.js';

export type JsonSchema = { [key: string]: unknown };

export const JSON_SCHEMA_DRAFT = 'https://json-schema.org/draft/2020-12/schema';

function withMeta(field: Field, schema: JsonSchema, def?: unknown): JsonSchema {
  const out: JsonSchema = { description: field.description, ...schema };
  if (def !== undefined) out['default'] = def;
  if (field.examples !== undefined) out['examples'] = [...field.examples];
  return out;
}

class Generator {
  readonly defs: Record<string, JsonSchema> = {};

  schema(field: Field): JsonSchema {
    switch (field.kind) {
      case 'string': {
        const s: JsonSchema = { type: field.numeric === true ? ['string', 'number'] : 'string' };
        if (field.allowEmpty !== true && field.numeric !== true) s['minLength'] = 1;
        if (field.pattern !== undefined) s['pattern'] = field.pattern;
        if (field.format !== undefined) s['format'] = field.format;
        return withMeta(field, s, field.default);
      }
      case 'int': {
        const s: JsonSchema = { type: 'integer' };
        if (field.min !== undefined) s['minimum'] = field.min;
        if (field.max !== undefined) s['maximum'] = field.max;
        return withMeta(field, s, field.default);
      }
      case 'bool':
        return withMeta(field, { type: 'boolean' }, field.default);
      case 'enum':
        return withMeta(field, { type: 'string', enum: [...field.values] }, field.default);
      case 'size': {
        const bareMin = field.min / (field.bare === 'MiB' ? 1024 ** 2 : 1024 ** 3);
        return withMeta(
          field,
          { anyOf: [{ type: 'number', minimum: bareMin }, { type: 'string', pattern: SIZE_PATTERN }] },
          field.default,
        );
      }
      case 'object':
        return this.named(field, () => this.object(field));
      case 'tagged':
        return this.named(field, () => this.tagged(field));
      case 'list': {
        const items = this.schema(field.item);
        const array: JsonSchema = { type: 'array', items };
        return withMeta(field, field.acceptSingle === true ? { anyOf: [items, array] } : array);
      }
      case 'map': {
        const value = this.schema(field.value);
        const s: JsonSchema = {
          type: 'object',
          additionalProperties: field.emptyValues === true ? { anyOf: [value, { type: 'null' }] } : value,
        };
        if (field.key !== undefined) s['propertyNames'] = { pattern: field.key.pattern };
        return withMeta(field, s);
      }
      case 'any':
        return { description: field.description };
      case 'union':
        return withMeta(field, { anyOf: field.options.map((o) => this.schema(o)) });
    }
  }

  /** A schema under `$defs` (made once), referenced (with its description: 2020-12 allows both) where it is used. */
  private named(field: ObjectField | TaggedField, make: () => JsonSchema): JsonSchema {
    const def = field.def;
    if (def === undefined) return make();
    if (this.defs[def] === undefined) {
      this.defs[def] = {}; // reserve the name first (recursion)
      this.defs[def] = make();
    }
    return { $ref: `#/$defs/${def}`, description: field.description };
  }

  private properties(fields: Record<string, Field>): JsonSchema {
    const props: JsonSchema = {};
    for (const [key, f] of Object.entries(fields)) props[key] = this.schema(f);
    return props;
  }

  object(field: ObjectField): JsonSchema {
    const s: JsonSchema = { type: 'object', properties: this.properties(field.fields), additionalProperties: false };
    if (field.extensions === true) {
      s['patternProperties'] = {
        [`^${EXTENSION_PREFIX}`]: { description: 'Ignored by vmenv: a place for YAML anchors (&name) to reuse with *name or <<: *name.' },
      };
    }
    if (field.required !== undefined && field.required.length > 0) s['required'] = [...field.required];
    return withMeta(field, s);
  }

  private tagged(field: TaggedField): JsonSchema {
    const variants = Object.entries(field.variants).map(([tag, variant]) => {
      const properties: JsonSchema = {
        [field.tag]: { const: tag, description: `${field.tagDescription} ${variant.description}` },
        ...this.properties(field.common),
        ...this.properties(variant.fields),
      };
      return {
        type: 'object',
        title: `${tag} ${field.noun.replace(/s$/, '')}`,
        description: variant.description,
        properties,
        required: [field.tag, ...(variant.required ?? [])],
        additionalProperties: false,
      };
    });
    return withMeta(field, {
      type: 'object',
      properties: { [field.tag]: { type: 'string', enum: Object.keys(field.variants), description: field.tagDescription } },
      required: [field.tag],
      oneOf: variants,
    });
  }
}

/** The JSON Schema of vmenv.yaml. */
export function configJsonSchema(): JsonSchema {
  const gen = new Generator();
  const root = gen.object(rootField);
  return {
    $schema: JSON_SCHEMA_DRAFT,
    title: 'vmenv.yaml',
    ...root,
    $defs: gen.defs,
  };
}
