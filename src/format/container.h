/* container.h - constants of the container format v1 shared by writer and loader (format/FORMAT.md). */
#ifndef MIXQ_CONTAINER_H
#define MIXQ_CONTAINER_H

#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mixq supports little-endian hosts only"
#endif

#define MXC_MAGIC "\x89MXQ\r\n\x1a\n"
#define MXC_MAGIC_LEN 8
#define MXC_PREAMBLE_LEN 64u
#define MXC_FORMAT_MAJOR 1u
#define MXC_FORMAT_MINOR 0u
/* Format minor version of a container holding a tensor of a codebook type (the codebook section, FORMAT.md §4.11). */
#define MXC_FORMAT_MINOR_CODEBOOK 2u
/* Largest JSON header a loader accepts. */
#define MXC_MAX_HEADER (256u * 1024u * 1024u)

/* Field offsets within the 64-byte preamble (all little-endian). */
enum {
    MXC_OFF_MAGIC = 0,
    MXC_OFF_MAJOR = 8,          /* u16 */
    MXC_OFF_MINOR = 10,         /* u16 */
    MXC_OFF_FLAGS = 12,         /* u32, must be 0 */
    MXC_OFF_DATA_OFFSET = 16,   /* u64, = 64 */
    MXC_OFF_DATA_LENGTH = 24,   /* u64 */
    MXC_OFF_HEADER_OFFSET = 32, /* u64, = data_offset + data_length */
    MXC_OFF_HEADER_LENGTH = 40, /* u64 */
    MXC_OFF_HEADER_XXH3 = 48,   /* u64, xxh3-64 of the header bytes */
    MXC_OFF_PREAMBLE_XXH3 = 56  /* u64, xxh3-64 of preamble bytes 0..55 */
};

static inline void mxc_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void mxc_put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void mxc_put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t mxc_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t mxc_get_u32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static inline uint64_t mxc_get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }

#endif
