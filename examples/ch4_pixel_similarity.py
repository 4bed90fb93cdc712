"""fastbook chapter 4, step 1: the pixel-similarity baseline on MNIST 3s and 7s.

The "ideal" 3 and 7 are the mean training images; a validation image is a 3 when
it is closer (mean absolute difference) to the ideal 3. fastbook: accuracy ~0.95.

    python examples/ch4_pixel_similarity.py
"""
import fastkern as fk


def mnist_distance(a, b):
    return (a - b).abs().mean((-1, -2))  # broadcasts: one distance per image


def main():
    s = fk.data.mnist_sample()  # the full MNIST 3s and 7s, shipped with fastkern (0 = '3', 1 = '7')
    train, valid = s.train_x.float() / 255, s.valid_x.float() / 255
    mean3, mean7 = train[s.train_y == 0].mean(0), train[s.train_y == 1].mean(0)
    is_3 = mnist_distance(valid, mean3) < mnist_distance(valid, mean7)
    acc_3s = is_3[s.valid_y == 0].float().mean().item()
    acc_7s = 1 - is_3[s.valid_y == 1].float().mean().item()
    acc = (acc_3s + acc_7s) / 2  # fastbook averages the two per-digit accuracies
    print(f"accuracy on 3s {acc_3s:.4f}, on 7s {acc_7s:.4f}, mean {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()
