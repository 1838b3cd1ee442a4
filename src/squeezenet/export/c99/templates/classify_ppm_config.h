/* Preprocessing of this export's model for classify_ppm.c; written by squeezenet export --format c.
 * Model: $model. Preset '$preset', as squeezenet.data.preprocess defines it. */

#ifndef CLASSIFY_PPM_CONFIG_H
#define CLASSIFY_PPM_CONFIG_H

#define CLASSIFY_PRESET "$preset"
/* 1: warp the whole photo to a CLASSIFY_RESIZE_SIDE square (Caffe's databases);
 * 0: resize the short side to CLASSIFY_RESIZE_SIDE, keeping the aspect ratio. */
#define CLASSIFY_WARP $warp
#define CLASSIFY_RESIZE_SIDE $resize_side
/* 1: channels in B, G, R order (Caffe). */
#define CLASSIFY_BGR $bgr
/* input = (pixel / 255 * CLASSIFY_SCALE - mean) / std, per channel in the model's channel order */
#define CLASSIFY_SCALE $scale
#define CLASSIFY_MEAN { $mean }
#define CLASSIFY_STD { $std }

#endif
