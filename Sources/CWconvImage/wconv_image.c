#include "wconv_image.h"
// Implementation lands with the data pipeline (training issue).
