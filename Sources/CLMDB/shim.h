// The system LMDB (Debian: liblmdb-dev), seen from Swift as the CLMDB module.
#include <lmdb.h>
