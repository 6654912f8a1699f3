"""Makes the HEIC/HEIF and AVIF test photos from the CC0 ones beside this file (see README).

HEIC needs an encoder that the service does not ship (GPL x265): run this in a scratch venv
with `pip install pillow==13.0.0 pillow-heif==1.8.1`, never from the project's own.
"""

from pathlib import Path

import pillow_heif
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
EXIF_IFD = 0x8769


def exif(make: str, model: str, taken: str, orientation: int | None = None) -> bytes:
    tags = Image.Exif()
    tags[271], tags[272] = make, model
    if orientation:
        tags[274] = orientation
    tags.get_ifd(EXIF_IFD)[36867] = taken
    return tags.tobytes()


def main() -> None:
    pillow_heif.register_heif_opener()
    chelsea = Image.open(HERE / "chelsea_canon.jpg").convert("RGB")
    coffee = ImageOps.exif_transpose(Image.open(HERE / "coffee_iphone_rot6.jpg")).convert("RGB")
    horse = Image.open(HERE / "horse_rgba.png").convert("RGBA")
    # Stored sideways with EXIF Orientation 6 in info: pillow-heif writes it as irot, as an
    # iPhone stores a portrait photo.
    sideways = chelsea.transpose(Image.Transpose.ROTATE_90)
    sideways.info["exif"] = exif("Apple", "iPhone 15 Pro", "2024:06:01 09:30:00", 6)
    sideways.save(HERE / "chelsea_iphone_rot6.heic", quality=80)
    coffee.info["exif"] = exif("samsung", "Galaxy S24", "2024:07:02 18:15:00")
    coffee.save(HERE / "coffee_samsung.heif", quality=80)
    horse.save(HERE / "horse_alpha.heic", quality=80)
    # AVIF (Pillow): the EXIF Orientation becomes irot.
    coffee.info.pop("exif")
    coffee.transpose(Image.Transpose.ROTATE_90).save(
        HERE / "coffee_pixel_rot6.avif",
        quality=70,
        speed=6,
        exif=exif("Google", "Pixel 8", "2024:08:03 12:00:00", 6),
    )
    horse.save(HERE / "horse_alpha.avif", quality=70, speed=6)


if __name__ == "__main__":
    main()
