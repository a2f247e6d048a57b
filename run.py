"""Train and evaluate one configuration, or a sweep with -m.

python run.py                                   # LGA on the embedded MNIST subset
python run.py -m attention=lga,se,cbam dataset=mnist,fashion
"""

import hydra

from lga.schemas import register_configs
from lga.train import task

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg):
    return task(cfg)


if __name__ == "__main__":
    main()
